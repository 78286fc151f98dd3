defmodule Mirage.Node.Runner do
  @moduledoc false
  # Makes calls to worker nodes for callers, one at a time, and is reused by the pool.
  #
  # Why a process between the caller and the worker: a late answer (after the
  # caller's deadline) arrives here and is dropped (an image in it released), never
  # in the caller's mailbox. Why reused: no process to start per call, and the worker
  # registers what a call makes under the pid that sent it, so the pids holding
  # images there stay a small set (at most the peak of concurrent calls). Who really
  # owns an image is kept by the pool.

  alias Mirage.Node.Pool
  require Logger

  @no_image [:info, :formats, :to_bytes]

  @doc false
  @spec start_link(GenServer.server()) :: pid()
  def start_link(pool), do: spawn_link(fn -> loop(pool) end)

  defp loop(pool) do
    receive do
      {:job, caller, ref, node, incarnation, op, request} ->
        run(pool, caller, ref, node, incarnation, op, request)
        loop(pool)

      # An abandon that crossed the answer of an earlier call: nothing to do.
      {:abandon, _ref} ->
        loop(pool)
    end
  end

  defp run(pool, caller, ref, node, incarnation, op, request) do
    caller_monitor = Process.monitor(caller)
    server = {:mirage, node}
    tag = Process.monitor(server)
    :erlang.send(server, {:"$gen_call", {self(), tag}, request}, [:noconnect])
    {answer, abandoned} = await(tag, ref, caller, caller_monitor, false)
    Process.demonitor(caller_monitor, [:flush])
    {outcome, reply, held} = answer(answer, pool, node, incarnation, op)
    Pool.checkin(pool, outcome, held, if(abandoned, do: nil, else: caller))
    unless abandoned, do: send(caller, {ref, reply})
  end

  defp await(tag, ref, caller, caller_monitor, abandoned) do
    receive do
      {^tag, reply} ->
        Process.demonitor(tag, [:flush])
        {{:reply, reply}, abandoned}

      {:DOWN, ^tag, :process, _, reason} ->
        {{:down, reason}, abandoned}

      {:abandon, ^ref} ->
        send(caller, {ref, :abandoned})
        await(tag, ref, caller, caller_monitor, true)

      {:DOWN, ^caller_monitor, :process, _, _} ->
        await(tag, ref, caller, caller_monitor, true)
    end
  end

  defp answer({:down, reason}, _pool, node, _incarnation, op) do
    Logger.warning(
      "Mirage.Node: #{inspect(op)} on #{node} got no answer: " <>
        if(reason == :noconnection, do: "the connection dropped", else: inspect(reason))
    )

    {:failed, {:error, :worker_crashed}, nil}
  end

  defp answer({:reply, {:ok, bytes, {handle, format, width, height}, term}}, pool, node, inc, op)
       when is_integer(handle) and op not in @no_image do
    {:served,
     {:ok, bytes, {{:mirage_node, pool, node, inc, handle}, format, width, height}, term},
     {inc, handle}}
  end

  defp answer({:reply, {:ok, _bytes, image, _term} = reply}, _pool, _node, _inc, op)
       when image != nil do
    Logger.error(
      "Mirage.Node: unexpected image in the answer to #{inspect(op)}: " <>
        inspect(reply, limit: 8, printable_limit: 80)
    )

    {:served, {:error, :internal_error}, nil}
  end

  # Everything else is checked by Mirage.Transport.result/2.
  defp answer({:reply, reply}, _pool, _node, _inc, _op), do: {:served, reply, nil}
end
