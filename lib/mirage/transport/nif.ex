defmodule Mirage.Transport.NIF do
  @moduledoc """
  The default transport: Python embedded in the VM through `priv/mirage_nif.so`.

  Every call runs on a dirty scheduler: operations that only read a header on a
  dirty I/O scheduler (they are short but may wait for the GIL, and there are many
  of those threads), the ones that decode, resample or encode on a dirty CPU
  scheduler. Image handles are NIF resources, released after garbage collection.
  """
  @behaviour Mirage.Transport

  @header_only [:from_bytes, :info, :formats]

  @impl true
  def call(op, source, args) when op in @header_only,
    do: Mirage.NIF.call_io(op, source, :erlang.term_to_binary(args))

  def call(op, source, args), do: Mirage.NIF.call_cpu(op, source, :erlang.term_to_binary(args))

  @impl true
  def release(handle), do: Mirage.NIF.release(handle)

  @impl true
  def live_handles, do: Mirage.NIF.live_handles()
end
