defmodule Mirage.Transport.Port do
  @moduledoc """
  The port transport: operations run in a pool of `python -m mirage.port` OS
  processes (`Mirage.Port`), started on first use or when configured
  (`config :mirage, transport: :port`).

  Lifetime of held images: released by `Mirage.release/1`, or when the process that
  made them exits; an image whose worker died answers `{:error, :worker_crashed}`.
  """
  @behaviour Mirage.Transport

  @impl true
  def call(op, source, args), do: Mirage.Port.call(pool(source), op, source, args)

  @impl true
  def release(handle), do: Mirage.Port.release(handle)

  @impl true
  def live_handles, do: Mirage.Port.live_handles(pool(nil))

  @impl true
  def children, do: [Mirage.Port.Pool]

  @impl true
  def handle?({:mirage_port, pool, slot, incarnation, handle}),
    do:
      (is_atom(pool) or is_pid(pool)) and is_integer(slot) and slot >= 0 and
        is_reference(incarnation) and is_integer(handle)

  def handle?(_term), do: false

  # An image names its own pool; anything else goes to the default one.
  defp pool({:mirage_port, pool, _, _, _}), do: pool
  defp pool(_source), do: Mirage.Port.ensure_started()
end
