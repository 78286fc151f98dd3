defmodule Mirage.Transport.Node do
  @moduledoc """
  The node transport (`transport: :node`): operations run on Python worker nodes
  reached through Erlang distribution (`Mirage.Node`), on this machine or others.

  Lifetime of held images: released by `Mirage.release/1`, or when the process that
  made them exits; an image whose worker's connection dropped answers
  `{:error, :worker_crashed}`. A VM that is not distributed answers
  `{:error, :not_distributed}`.
  """
  @behaviour Mirage.Transport

  @impl true
  def call(op, source, args), do: Mirage.Node.call(pool(source), op, source, args)

  @impl true
  def release(handle), do: Mirage.Node.release(handle)

  @impl true
  def live_handles, do: Mirage.Node.live_handles(pool(nil))

  @impl true
  def children, do: [Mirage.Node.Pool]

  @impl true
  def handle?({:mirage_node, pool, node, incarnation, handle}),
    do: is_atom(node) and is_reference(incarnation) and is_integer(handle) and pool != nil

  def handle?(_term), do: false

  # An image names its own pool; anything else goes to the default one.
  defp pool({:mirage_node, pool, _, _, _}), do: pool

  defp pool(_source) do
    Mirage.Node.ensure_started()
    Mirage.Node.Pool
  end
end
