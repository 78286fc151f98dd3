defmodule Mirage.Transport do
  @moduledoc """
  How `Mirage` reaches the Python core. Every transport carries the same
  operations (the names in `mirage/ops.py`) with the same arguments: a source (a
  held image's handle, encoded bytes, or `nil`) and one plain options map, already
  validated by `Mirage.Options`. `Mirage.Transport.NIF` (the embedded interpreter)
  is the default; a port and a distributed-node transport plug in here.
  """

  @typedoc "An opaque reference to an image held by the Python core."
  @type handle :: term()

  @typedoc "A new held image: its handle, format and stored size."
  @type image :: {handle(), Mirage.format(), pos_integer(), pos_integer()}

  @typedoc "The operations, as named in mirage/ops.py."
  @type op ::
          :from_bytes
          | :info
          | :thumbnail
          | :resize
          | :crop
          | :rotate
          | :flip
          | :auto_orient
          | :to_bytes
          | :formats

  @doc """
  Runs `op` and returns what it produced: encoded bytes, a new held image and a
  plain result term, each `nil` when the operation makes none. `:released` when
  the source handle was released by `c:release/1`.
  """
  @callback call(op(), handle() | binary() | nil, map()) ::
              {:ok, binary() | nil, image() | nil, term()}
              | {:error, Mirage.Error.reason()}
              | :released

  @doc "Lets go of a held image now; idempotent, and never blocks on the core."
  @callback release(handle()) :: :ok

  @doc "How many images the Python core holds for this transport right now."
  @callback live_handles() :: non_neg_integer()
end
