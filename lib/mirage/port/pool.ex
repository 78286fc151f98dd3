defmodule Mirage.Port.Pool do
  @moduledoc """
  The port transport's pool: one process that owns every worker's port, queues the
  requests fairly (first in, first out), enforces each call's deadline, restarts
  workers and remembers which process owns images in which worker. See `Mirage.Port`
  for the configuration and the rules callers see.

  The pool never decodes a reply's body: it reads the request id from the frame's
  head and hands the frame to the waiting caller, which decodes it. So a large
  output is copied once, by the process that asked for it.

  Dispatch: a request on a held image may only run on the worker holding it; any
  other request runs on any idle worker. Each idle worker takes the oldest request it
  may run (held-image requests queue per worker, the others in one queue, and a
  sequence number orders the two), so no request waits behind younger ones it
  could have run with.
  """
  use GenServer
  require Logger

  alias Mirage.Port.Worker

  # Consecutive deaths without a single reply after which a worker slot counts as
  # unable to start: its error is logged once and calls stop waiting for it.
  @failing_after 3
  @max_backoff 10_000

  # Operations whose reply may carry a held image, so whose caller becomes an owner.
  @no_image [:info, :formats, :to_bytes, :live_handles]

  @typedoc "Where a reply came from: the pool, the worker slot and its incarnation."
  @type origin :: {GenServer.server(), non_neg_integer(), reference()}

  defmodule Slot do
    @moduledoc false
    defstruct [
      :index,
      worker: nil,
      current: nil,
      served: 0,
      # Starts attempted, the first included; restarts are the others.
      starts: 0,
      failures: 0,
      retry: nil,
      last_exit: nil,
      held: :queue.new()
    ]
  end

  @doc false
  def child_spec(opts) do
    %{
      id: Keyword.get(opts, :name, __MODULE__),
      start: {__MODULE__, :start_link, [opts]},
      # Time for terminate/2 to stop the workers.
      shutdown: 5_000
    }
  end

  @doc """
  Starts a pool. Options override `config :mirage, :port` (see `Mirage.Port`), plus
  `:name` (default `Mirage.Port.Pool`) and `:program` (`{executable, args, env}`,
  the command line of each worker; default the real `python -m mirage.port`).
  """
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\ []) do
    name = Keyword.get(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, Keyword.put(opts, :name, name), name: name)
  end

  @doc """
  The pool's settings: `config :mirage, :port` merged over the defaults, then `opts`.
  """
  @spec config(keyword()) :: keyword()
  def config(opts \\ []) do
    max_pixels = Application.get_env(:mirage, :max_pixels, Mirage.Options.default_max_pixels())

    defaults = [
      workers: :erlang.system_info(:dirty_cpu_schedulers),
      queue: 1_000,
      # A decoded image takes up to 4 bytes a pixel in Pillow, and an operation may
      # hold the source, an intermediate and the result at once; plus the
      # interpreter, Pillow and the allocator's per-thread arenas.
      max_memory: max_pixels * 16 + 1024 * 1024 * 1024,
      max_images: 1_000
    ]

    config = Keyword.merge(defaults, Application.get_env(:mirage, :port, []))
    config = Keyword.merge(config, opts)
    Enum.each([:workers, :queue, :max_memory, :max_images], &check_positive!(config, &1))
    # Held images may take half the address space; operations need the rest.
    config = Keyword.put_new(config, :max_held, div(config[:max_memory], 2))
    check_positive!(config, :max_held)
    config
  end

  defp check_positive!(config, key) do
    value = config[key]

    unless is_integer(value) and value > 0,
      do:
        raise(
          ArgumentError,
          "config :mirage, :port, #{key}: must be a positive integer, got: #{inspect(value)}"
        )
  end

  @doc """
  Runs `op` on a worker of `pool` and returns the frame of its reply with where it
  came from, or `{:error, reason}` with a transport reason. `source` is encoded
  bytes, `nil`, or `{slot, incarnation, handle}` for an image held by this pool.
  `timeout` is in milliseconds (or `:infinity`); `nil` takes
  `config :mirage, timeout: ms`, else 30 s (calls through `Mirage` always carry one).
  """
  @spec call(GenServer.server(), atom(), term(), map(), timeout() | nil) ::
          {:frame, binary(), origin()} | {:error, :timeout | :worker_crashed | :overloaded}
  def call(pool, op, source, args, timeout) do
    GenServer.call(pool, {:call, op, source, args, timeout}, :infinity)
  catch
    # The pool itself went away (it is restarted by its supervisor).
    :exit, _ -> {:error, :worker_crashed}
  end

  @doc "Releases a held image; a no-op when its worker is gone (the image went with it)."
  @spec release(GenServer.server(), non_neg_integer(), reference(), integer()) :: :ok
  def release(pool, slot, incarnation, handle),
    do: GenServer.cast(pool, {:release, slot, incarnation, handle})

  @doc "The state of each worker and of the queue (see `Mirage.Port.workers/1`)."
  @spec info(GenServer.server()) :: %{queue: non_neg_integer(), workers: [map()]}
  def info(pool), do: GenServer.call(pool, :info)

  @doc "The pool's worker slots that have a running worker now."
  @spec running(GenServer.server()) :: [non_neg_integer()]
  def running(pool) do
    for %{index: index, os_pid: os_pid} <- info(pool).workers, os_pid != nil, do: index
  end

  # -- server -------------------------------------------------------------------

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    config = config(opts)

    program =
      case Keyword.fetch(opts, :program) do
        {:ok, program} -> {:ok, program}
        :error -> Worker.program(config)
      end

    slots = Map.new(0..(config[:workers] - 1), &{&1, %Slot{index: &1}})

    state = %{
      name: config[:name],
      config: config,
      program: program,
      slots: slots,
      # port -> slot index
      ports: %{},
      # Requests not yet sent: the shared queue, and per slot `held` in Slot.
      queue: :queue.new(),
      # ref -> request, for every request queued or running
      pending: %{},
      queued: 0,
      seq: 0,
      # owner pid -> {monitor, MapSet of slot indexes}
      owners: %{}
    }

    state = Enum.reduce(Map.keys(slots), state, &start_worker(&2, &1))
    {:ok, state}
  end

  @impl true
  def handle_call({:call, op, source, args, timeout}, {owner, _} = from, state) do
    timeout = timeout || Application.get_env(:mirage, :timeout, 30_000)

    case route(state, source) do
      {:error, reason} ->
        {:reply, {:error, reason}, state}

      {:ok, slot, python_source} ->
        cond do
          state.queued >= state.config[:queue] ->
            {:reply, {:error, :overloaded}, state}

          unavailable?(state) ->
            {:reply, {:error, :worker_crashed}, state}

          true ->
            ref = make_ref()

            timer =
              if timeout != :infinity, do: Process.send_after(self(), {:deadline, ref}, timeout)

            request = %{
              ref: ref,
              seq: state.seq,
              from: from,
              owner: owner,
              op: op,
              source: python_source,
              args: args,
              slot: slot,
              timer: timer,
              # A caller that dies while its request waits takes the request with it.
              monitor: Process.monitor(owner),
              id: nil
            }

            state = %{state | seq: state.seq + 1, queued: state.queued + 1}
            state = put_in(state.pending[ref], request)
            state = enqueue(state, request)
            {:noreply, dispatch(state)}
        end
    end
  end

  def handle_call(:info, _from, state) do
    workers =
      state.slots
      |> Map.values()
      |> Enum.sort_by(& &1.index)
      |> Enum.map(fn slot ->
        %{
          index: slot.index,
          os_pid: slot.worker && slot.worker.os_pid,
          busy: slot.current != nil,
          served: slot.served,
          restarts: max(slot.starts - 1, 0)
        }
      end)

    {:reply, %{queue: state.queued, workers: workers}, state}
  end

  @impl true
  def handle_cast({:release, index, incarnation, handle}, state) do
    case state.slots[index] do
      %Slot{worker: %Worker{incarnation: ^incarnation} = worker} ->
        Worker.notify(worker, {:release, [handle]})

      _ ->
        :ok
    end

    {:noreply, state}
  end

  @impl true
  def handle_info({port, {:data, frame}}, %{ports: ports} = state)
      when is_map_key(ports, port) do
    index = ports[port]
    slot = state.slots[index]
    current_id = slot.current && slot.current.id

    case Worker.parse(frame) do
      {:log, level, line} ->
        Logger.log(level, line, mirage: :python)
        {:noreply, state}

      {:reply, ^current_id, frame} ->
        request = slot.current
        answer(request, {:frame, frame, {state.name, index, slot.worker.incarnation}})

        slot = %{slot | current: nil, served: slot.served + 1, failures: 0}
        state = %{state | pending: Map.delete(state.pending, request.ref)}
        {:noreply, state |> put_slot(slot) |> dispatch()}

      _ ->
        # A reply nobody asked for or bytes that are no frame: the program is not
        # speaking the protocol, so nothing more it says can be trusted.
        Logger.error(
          "Mirage.Port: worker #{index} (os pid #{slot.worker.os_pid}) sent an invalid frame " <>
            "(#{byte_size(frame)} bytes, starting #{inspect(binary_part(frame, 0, min(byte_size(frame), 16)))}); killing it"
        )

        Worker.kill(slot.worker)
        {:noreply, worker_down(state, index, :invalid_frame)}
    end
  end

  def handle_info({port, {:exit_status, status}}, %{ports: ports} = state)
      when is_map_key(ports, port) do
    index = ports[port]
    slot = state.slots[index]

    Logger.log(
      if(slot.current, do: :error, else: :warning),
      "Mirage.Port: worker #{index} (os pid #{slot.worker.os_pid}) exited with status #{status}" <>
        if(slot.current, do: " during #{inspect(slot.current.op)}", else: "")
    )

    {:noreply, worker_down(state, index, {:exit_status, status})}
  end

  def handle_info({:EXIT, port, reason}, state) when is_port(port) do
    case state.ports do
      %{^port => index} ->
        # Closed without an exit status (e.g. the pipe broke): same as a crash.
        Logger.error("Mirage.Port: worker #{index}'s port closed: #{inspect(reason)}")
        {:noreply, worker_down(state, index, {:port_closed, reason})}

      _ ->
        {:noreply, state}
    end
  end

  def handle_info({:deadline, ref}, state) do
    case state.pending do
      %{^ref => %{id: nil} = request} ->
        # Still queued: it never reached a worker.
        answer(request, {:error, :timeout})
        {:noreply, %{state | pending: Map.delete(state.pending, ref), queued: state.queued - 1}}

      %{^ref => request} ->
        index = Enum.find_value(state.slots, fn {i, s} -> s.current == request && i end)
        slot = state.slots[index]

        Logger.warning(
          "Mirage.Port: #{inspect(request.op)} passed its deadline on worker #{index} " <>
            "(os pid #{slot.worker.os_pid}); killing it"
        )

        Worker.kill(slot.worker)
        # Answered here, so worker_down finds no request to answer.
        answer(request, {:error, :timeout})
        state = %{state | pending: Map.delete(state.pending, ref)}
        state = put_slot(state, %{slot | current: nil})
        {:noreply, worker_down(state, index, :killed)}

      _ ->
        {:noreply, state}
    end
  end

  def handle_info(:dispatch, state), do: {:noreply, dispatch(state)}

  def handle_info({:restart, index}, state) do
    state = put_slot(state, %{state.slots[index] | retry: nil})
    {:noreply, state |> start_worker(index) |> dispatch()}
  end

  def handle_info({:DOWN, monitor, :process, owner, _}, state) do
    case Enum.find(Map.values(state.pending), &(&1.monitor == monitor)) do
      nil -> {:noreply, owner_down(state, monitor, owner)}
      request -> {:noreply, caller_down(state, request)}
    end
  end

  def handle_info(_message, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    # Closing the ports is enough for healthy workers (end of input ends them); a
    # worker stuck in a decoder needs the kill.
    for {_, %Slot{worker: %Worker{} = worker}} <- state.slots do
      if worker_busy?(state, worker), do: Worker.kill(worker), else: Worker.close(worker)
    end

    :ok
  end

  # -- internals ----------------------------------------------------------------

  # A caller died. Queued, its request is dropped (its deadline and its place in the
  # queue go with it); running, the work goes on and the reply is dropped, since
  # killing the worker would take other owners' images with it.
  defp caller_down(state, %{id: nil} = request) do
    cancel(request.timer)
    %{state | pending: Map.delete(state.pending, request.ref), queued: state.queued - 1}
  end

  defp caller_down(state, _running), do: state

  defp owner_down(state, monitor, owner) do
    case state.owners do
      %{^owner => {^monitor, indexes}} ->
        for index <- indexes,
            %Slot{worker: %Worker{} = worker} <- [state.slots[index]],
            do: Worker.notify(worker, {:release_owner, owner})

        %{state | owners: Map.delete(state.owners, owner)}

      _ ->
        state
    end
  end

  defp worker_busy?(state, worker) do
    Enum.any?(state.slots, fn {_, s} -> s.worker == worker and s.current != nil end)
  end

  defp route(_state, nil), do: {:ok, nil, nil}
  defp route(_state, bytes) when is_binary(bytes), do: {:ok, nil, bytes}

  # Internal requests for one worker in particular (live_handles), whoever it is now.
  defp route(state, {:slot, index}) do
    case state.slots[index] do
      %Slot{worker: %Worker{}} -> {:ok, index, nil}
      _ -> {:error, :worker_crashed}
    end
  end

  defp route(state, {index, incarnation, handle}) do
    case state.slots[index] do
      %Slot{worker: %Worker{incarnation: ^incarnation}} -> {:ok, index, {:handle, handle}}
      # The worker that held the image died (or was replaced): the image is gone.
      _ -> {:error, :worker_crashed}
    end
  end

  # At the back of its queue; `put` is :queue.in_r/2 to put it back at the front.
  defp enqueue(state, request, put \\ &:queue.in/2)

  defp enqueue(state, %{slot: nil} = request, put),
    do: %{state | queue: put.(request.ref, state.queue)}

  defp enqueue(state, %{slot: index} = request, put) do
    slot = state.slots[index]
    put_slot(state, %{slot | held: put.({request.seq, request.ref}, slot.held)})
  end

  defp dispatch(state) do
    Enum.reduce(Enum.sort(Map.keys(state.slots)), state, fn index, state ->
      slot = state.slots[index]
      if slot.worker != nil and slot.current == nil, do: dispatch_to(state, slot), else: state
    end)
  end

  defp dispatch_to(state, slot) do
    case next_request(state, slot) do
      {nil, state, slot} ->
        put_slot(state, slot)

      {request, state, slot} ->
        case Worker.request(slot.worker, request.op, request.source, request.args, request.owner) do
          {:ok, worker, id} ->
            request = %{request | id: id}
            state = %{state | pending: Map.put(state.pending, request.ref, request)}
            state = %{state | queued: state.queued - 1}

            state =
              if request.op in @no_image,
                do: state,
                else: add_owner(state, request.owner, slot.index)

            put_slot(state, %{slot | worker: worker, current: request})

          :closed ->
            # The worker died after its last reply, before we heard: the request
            # never reached it, so it goes back to the head of its queue.
            state = state |> put_slot(slot) |> enqueue(request, &:queue.in_r/2)
            send(self(), :dispatch)
            worker_down(state, slot.index, {:port_closed, :before_request})
        end
    end
  end

  # The oldest live request this slot may run: the head of its own queue (requests
  # on images it holds) or of the shared queue, whichever came first. Entries whose
  # request already timed out are dropped on the way.
  defp next_request(state, slot) do
    {held, held_queue} = live_head(state, slot.held, fn {_seq, ref} -> ref end)
    {shared, shared_queue} = live_head(state, state.queue, & &1)
    state = %{state | queue: shared_queue}
    slot = %{slot | held: held_queue}

    case {held, shared} do
      {nil, nil} ->
        {nil, state, slot}

      {{_, ref}, nil} ->
        {state.pending[ref], state, %{slot | held: :queue.drop(held_queue)}}

      {nil, ref} ->
        {state.pending[ref], %{state | queue: :queue.drop(shared_queue)}, slot}

      {{seq, ref}, shared_ref} ->
        if seq < state.pending[shared_ref].seq,
          do: {state.pending[ref], state, %{slot | held: :queue.drop(held_queue)}},
          else: {state.pending[shared_ref], %{state | queue: :queue.drop(shared_queue)}, slot}
    end
  end

  defp live_head(state, queue, ref_of) do
    case :queue.peek(queue) do
      :empty ->
        {nil, queue}

      {:value, entry} ->
        if Map.has_key?(state.pending, ref_of.(entry)),
          do: {entry, queue},
          else: live_head(state, :queue.drop(queue), ref_of)
    end
  end

  defp add_owner(state, owner, index) do
    case state.owners do
      %{^owner => {monitor, indexes}} ->
        put_in(state.owners[owner], {monitor, MapSet.put(indexes, index)})

      _ ->
        put_in(state.owners[owner], {Process.monitor(owner), MapSet.new([index])})
    end
  end

  defp start_worker(state, index) do
    slot = %{state.slots[index] | starts: state.slots[index].starts + 1}

    with {:ok, program} <- state.program,
         {:ok, worker} <- Worker.open(program) do
      state = put_in(state.ports[worker.port], index)
      put_slot(state, %{slot | worker: worker})
    else
      {:error, message} when is_binary(message) ->
        failed(state, slot, message)

      {:error, reason} ->
        {:ok, {executable, _, _}} = state.program
        failed(state, slot, "#{executable} cannot be run: #{inspect(reason)}")
    end
  end

  # The worker in `index` is gone (killed by us, crashed, or spoke nonsense): answer
  # its request, if still waiting, and start another after a pause that grows with
  # each consecutive death that produced no reply.
  defp worker_down(state, index, why) do
    slot = state.slots[index]
    state = %{state | ports: Map.delete(state.ports, slot.worker.port)}

    state =
      case slot.current do
        nil ->
          state

        request ->
          answer(request, {:error, :worker_crashed})
          %{state | pending: Map.delete(state.pending, request.ref)}
      end

    Worker.close(slot.worker)
    # Requests queued on the images it held can never run now.
    state = fail_held(state, slot)
    slot = %{slot | worker: nil, current: nil, held: :queue.new()}

    if why == :killed do
      # Our own doing, not the program's fault: replace it at once.
      state |> put_slot(slot) |> start_worker(index) |> dispatch()
    else
      failed(state, slot, describe(why))
    end
  end

  defp failed(state, slot, why) do
    slot = %{slot | worker: nil, failures: slot.failures + 1, last_exit: why}

    if slot.failures == @failing_after do
      command =
        case state.program do
          {:ok, {executable, args, _}} -> Enum.join([executable | args], " ")
          {:error, _} -> "python -m mirage.port"
        end

      Logger.error(
        "Mirage.Port: the worker program `#{command}` died " <>
          "#{@failing_after} times in a row without answering (last: #{why}); " <>
          "retrying every few seconds. Check the interpreter (MIRAGE_PYTHON, " <>
          "config :mirage, python:) and that it can import mirage and PIL."
      )
    end

    delay = if slot.failures <= 1, do: 0, else: min(50 * 2 ** slot.failures, @max_backoff)

    slot = %{slot | retry: Process.send_after(self(), {:restart, slot.index}, delay)}
    state = put_slot(state, slot)
    if unavailable?(state), do: fail_queue(state), else: state
  end

  defp describe({:exit_status, status}), do: "exit status #{status}"
  defp describe(:invalid_frame), do: "an invalid frame"
  defp describe({:port_closed, reason}), do: "port closed (#{inspect(reason)})"

  # No worker has a chance of answering soon: every slot failed repeatedly.
  defp unavailable?(state),
    do: Enum.all?(state.slots, fn {_, slot} -> slot.failures >= @failing_after end)

  defp fail_queue(state) do
    %{fail_all(state, :queue.to_list(state.queue)) | queue: :queue.new()}
  end

  defp fail_held(state, slot) do
    fail_all(state, for({_seq, ref} <- :queue.to_list(slot.held), do: ref))
  end

  # Answers the queued requests among `refs` (others were answered already).
  defp fail_all(state, refs) do
    refs = Enum.filter(refs, &Map.has_key?(state.pending, &1))
    Enum.each(refs, &answer(state.pending[&1], {:error, :worker_crashed}))
    %{state | pending: Map.drop(state.pending, refs), queued: state.queued - length(refs)}
  end

  defp put_slot(state, slot), do: put_in(state.slots[slot.index], slot)

  # The one way a request is answered: its timer and its caller's monitor go too.
  defp answer(request, reply) do
    cancel(request.timer)
    Process.demonitor(request.monitor, [:flush])
    GenServer.reply(request.from, reply)
  end

  defp cancel(nil), do: :ok
  defp cancel(timer), do: Process.cancel_timer(timer, async: true, info: false)
end
