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
    with {:ok, path, info} <- Mirage.NIF.Loader.prepare() do
      Mirage.NIF.Loader.result(:erlang.load_nif(path, info))
    end
  end

  @spec from_bytes(binary(), pos_integer()) ::
          {:ok, reference(), atom(), pos_integer(), pos_integer()} | {:error, atom()}
  def from_bytes(_bytes, _max_pixels), do: :erlang.nif_error(:nif_not_loaded)

  @spec resize(reference(), pos_integer(), pos_integer(), pos_integer()) ::
          {:ok, binary(), reference(), atom(), pos_integer(), pos_integer()} | {:error, atom()}
  def resize(_resource, _width, _height, _max_pixels), do: :erlang.nif_error(:nif_not_loaded)

  @spec live_handles() :: non_neg_integer()
  def live_handles, do: :erlang.nif_error(:nif_not_loaded)

  @spec reasons() :: [atom()]
  def reasons, do: :erlang.nif_error(:nif_not_loaded)

  @spec formats() :: [atom()]
  def formats, do: :erlang.nif_error(:nif_not_loaded)
end
