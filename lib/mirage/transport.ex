defmodule Mirage.Transport do
  @moduledoc """
  How `Mirage` reaches the Python core. Every transport carries the same operations
  with the same arguments, already validated by `Mirage`, plus one plain options map.
  `Mirage.Transport.NIF` (the embedded interpreter) is the default and, for now, the
  only one; a port and a distributed-node transport plug in here.
  """

  @typedoc "Validated options passed with every operation."
  @type options :: %{max_pixels: pos_integer()}

  @typedoc "An opaque reference to an image held by the Python core."
  @type handle :: term()

  @callback from_bytes(binary(), options()) ::
              {:ok, handle(), Mirage.format(), pos_integer(), pos_integer()}
              | {:error, Mirage.Error.reason()}

  @callback resize(handle(), pos_integer(), pos_integer(), options()) ::
              {:ok, binary(), handle(), Mirage.format(), pos_integer(), pos_integer()}
              | {:error, Mirage.Error.reason()}

  @doc "How many images the Python core holds for this transport right now."
  @callback live_handles() :: non_neg_integer()
end
