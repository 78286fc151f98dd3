defmodule Mirage.NIF do
  # Stubs for priv/mirage_nif.so (c_src/). Callers use Mirage, which validates
  # every argument first; the C side re-checks types and answers badarg.
  @moduledoc false

  # require: Loader must be compiled first, as on_load runs when the compiler loads us.
  require Mirage.NIF.Loader
  @on_load :load
  @doc false
  def load do
    # load_nif must be called from this module; the Loader prepares and explains.
    with {:ok, path, info} <- Mirage.NIF.Loader.prepare(),
         :ok <- Mirage.NIF.Loader.result(:erlang.load_nif(path, info)) do
      :ok
    else
      {:error, {:mirage_nif, message}} = error ->
        # Also without Logger running (the code server's own report needs it).
        IO.puts(:stderr, "mirage: the NIF was not loaded: " <> message)
        error
    end
  end

  @typep result ::
           {:ok, binary() | nil, {reference(), atom(), pos_integer(), pos_integer()} | nil,
            term()}
           | {:error, atom()}
           | :released

  @doc false
  @spec call_io(atom(), reference() | binary() | nil, binary()) :: result()
  def call_io(_op, _source, _args), do: :erlang.nif_error(:nif_not_loaded)

  @doc false
  @spec call_cpu(atom(), reference() | binary() | nil, binary()) :: result()
  def call_cpu(_op, _source, _args), do: :erlang.nif_error(:nif_not_loaded)

  # A normal-scheduler NIF: it only queues the handle for the reaper thread.
  @spec release(reference()) :: :ok
  def release(_image), do: :erlang.nif_error(:nif_not_loaded)

  @spec live_handles() :: non_neg_integer()
  def live_handles, do: :erlang.nif_error(:nif_not_loaded)

  @spec reasons() :: [atom()]
  def reasons, do: :erlang.nif_error(:nif_not_loaded)

  @spec formats() :: [atom()]
  def formats, do: :erlang.nif_error(:nif_not_loaded)
end
