defmodule Mirage.Transport.NIF do
  @moduledoc """
  The default transport: Python embedded in the VM through `priv/mirage_nif.so`.
  Each call runs on a dirty scheduler; image handles are NIF resources, released
  when the term is garbage collected.
  """
  @behaviour Mirage.Transport

  @impl true
  def from_bytes(bytes, %{max_pixels: max_pixels}), do: Mirage.NIF.from_bytes(bytes, max_pixels)

  @impl true
  def resize(resource, width, height, %{max_pixels: max_pixels}),
    do: Mirage.NIF.resize(resource, width, height, max_pixels)

  @impl true
  def live_handles, do: Mirage.NIF.live_handles()
end
