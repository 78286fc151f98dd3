defmodule Mirage.Node.Pool do
  @moduledoc """
  The node transport's pool: one process that knows the worker nodes (named in
  config, or started here as OS processes), keeps them connected, picks the worker
  for each call and remembers which process owns which held image. See
  `Mirage.Node` for the configuration and the rules callers see.

  A call (`Mirage.Node.call/4`) asks the pool to `run/4` it: the pool picks the
  worker and hands the request to an idle runner (`Mirage.Node.Runner`, reused from
  call to call), which sends it to that node, answers the caller and tells the pool
  when it is done (`checkin/4`).
  """
  use GenServer
  require Logger

  alias Mirage.Node.Worker

  @retry_first 200
  @retry_max 10_000

  defmodule Slot do
    @moduledoc false
    # A worker node: `conn` is :down, :connecting or :up; `proc` is nil for a remote
    # node, else the spawned OS process's state (:starting, :running or :none).
    defstruct [
      :node,
      :proc,
      conn: :down,
      worker: nil,
      incarnation: nil,
      in_flight: 0,
      served: 0,
      failures: 0,
      retry: nil,
      attempt: nil
    ]
  end

  @typedoc "An image's place: the node and the incarnation of its connection."
  @type target :: {node(), reference()}

  @doc false
  def child_spec(opts) do
    %{
      id: Keyword.get(opts, :name, __MODULE__),
      start: {__MODULE__, :start_link, [opts]},
      # Time for terminate/2 to stop the spawned workers.
      shutdown: 10_000
    }
  end

  @doc """
  Starts a pool. Options override `config :mirage, :node` (see `Mirage.Node`), plus
  `:name` (default `Mirage.Node.Pool`) and `:prefix`, the start of the spawned
  workers' names (default `mirage_<this node's name>_` for the default pool, with
  the pool's name added for others).
  """
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\ []) do
    name = Keyword.get(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, Keyword.put(opts, :name, name), name: name)
  end

  @keys [:nodes, :spawn, :cookie, :max_in_flight, :queue, :jobs, :max_handles]

  @doc """
  The pool's settings: `config :mirage, :node` merged over the defaults, then `opts`.
  An unknown key in the config raises `ArgumentError` rather than being ignored.
  """
  @spec config(keyword()) :: keyword()
  def config(opts \\ []) do
    env = Application.get_env(:mirage, :node, [])
    Enum.each(env, fn {key, _} -> unless key in @keys, do: unknown!(key) end)
    defaults = [nodes: [], spawn: 0, max_in_flight: 64, queue: 1_000]
    config = Keyword.merge(defaults, env)
    config = Keyword.merge(config, opts)

    unless is_list(config[:nodes]) and Enum.all?(config[:nodes], &node_name?/1),
      do: invalid!(:nodes, config[:nodes], "a list of node names such as :\"mirage1@host\"")

    unless is_integer(config[:spawn]) and config[:spawn] >= 0,
      do: invalid!(:spawn, config[:spawn], "a non-negative integer")

    for key <- [:jobs, :max_handles, :max_in_flight, :queue], config[key] != nil do
      unless is_integer(config[key]) and config[key] > 0,
        do: invalid!(key, config[key], "a positive integer")
    end

    cookie = config[:cookie]

    unless cookie == nil or (is_atom(cookie) and cookie not in [true, false]) or
             (is_binary(cookie) and cookie != ""),
           do: invalid!(:cookie, cookie, "an atom or a non-empty string")

    config
  end

  defp node_name?(name) when is_atom(name),
    do: Regex.match?(~r/\A[A-Za-z0-9_-]+@[A-Za-z0-9_.-]+\z/, Atom.to_string(name))

  defp node_name?(_), do: false

  # A deadline is not the pool's: every transport takes it from the call's
  # `timeout:` option, whose default is `config :mirage, timeout: ms`.
  defp unknown!(:timeout) do
    raise ArgumentError,
          "config :mirage, :node, timeout: a call's deadline is its timeout: option, " <>
            "whose default is config :mirage, timeout: ms (the same for every transport)"
  end

  defp unknown!(key) do
    raise ArgumentError,
          "config :mirage, :node: unknown key #{inspect(key)}; expected one of #{inspect(@keys)}"
  end

  defp invalid!(key, value, expected) do
    raise ArgumentError,
          "config :mirage, :node, #{key}: expected #{expected}, got: #{inspect(value)}"
  end

  @doc """
  Runs a call: `target` is the place of the image the call works on (it must run
  there), or `nil` for any worker (the connected one with the fewest calls in
  flight). `job` is `{ref, op, request}`; the runner answers the calling process
  `{ref, reply}`. Waits while workers are still starting, at most `timeout` ms.
  """
  @spec run(GenServer.server(), target() | nil, timeout(), {reference(), atom(), tuple()}) ::
          {:ok, pid()} | {:error, :not_distributed | :worker_crashed | :timeout}
  def run(pool, target, timeout, job) do
    GenServer.call(pool, {:run, target, timeout, job}, :infinity)
  catch
    :exit, _ -> {:error, :worker_crashed}
  end

  @doc """
  Ends a runner's call. `outcome` is `:served` or `:failed`; `image` is
  `{incarnation, python_handle}` of an image the call produced (the connection it
  was made on) and `owner` the process it belongs to
  (`nil` when nobody will use it: it is released at once).
  """
  @spec checkin(
          GenServer.server(),
          :served | :failed,
          {reference(), integer()} | nil,
          pid() | nil
        ) ::
          :ok
  def checkin(pool, outcome, nil, _owner), do: GenServer.cast(pool, {:checkin, self(), outcome})

  def checkin(pool, outcome, image, owner) do
    # A call: the pool knows the image before its owner can release it.
    GenServer.call(pool, {:checkin, self(), outcome, image, owner}, :infinity)
  catch
    :exit, _ -> :ok
  end

  @doc "Releases a held image; `:ok` also when it or its node is gone."
  @spec release(GenServer.server(), node(), reference(), integer()) :: :ok
  def release(pool, node, incarnation, handle),
    do: GenServer.cast(pool, {:release, node, incarnation, handle})

  @doc "One map per worker (see `Mirage.Node.workers/0`)."
  @spec workers(GenServer.server()) :: [map()]
  def workers(pool), do: GenServer.call(pool, :workers)

  @doc "How many images the pool's workers hold for live owners."
  @spec live_handles(GenServer.server()) :: non_neg_integer()
  def live_handles(pool), do: GenServer.call(pool, :live_handles)

  # -- server -------------------------------------------------------------------

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    config = config(opts)

    state = %{
      name: config[:name],
      config: config,
      started: false,
      warned: false,
      slots: %{},
      ports: %{},
      # runner pid -> node, for the runners busy with a call
      busy: %{},
      idle: [],
      # parked calls: [{from, job, timer}]
      waiting: [],
      # {node, incarnation, handle} -> owner
      held: %{},
      # owner -> {monitor, MapSet of held keys}
      owners: %{}
    }

    {:ok, start(state)}
  end

  # Workers start once the VM is distributed, now or on a later call.
  defp start(%{started: true} = state), do: state

  defp start(state) do
    if Node.alive?() do
      cookie = cookie(state.config)
      alive = node() |> Atom.to_string() |> String.split("@") |> hd()
      host = node() |> Atom.to_string() |> String.split("@") |> List.last()
      prefix = Keyword.get_lazy(state.config, :prefix, fn -> prefix(state.name, alive) end)

      spawned =
        for i <- 1..state.config[:spawn]//1,
            do: %Slot{node: :"#{prefix}#{i}@#{host}", proc: :none}

      remote = for node <- state.config[:nodes], do: %Slot{node: node}

      slots = Map.new(spawned ++ remote, &{&1.node, &1})

      for node <- state.config[:nodes],
          cookie != Node.get_cookie(),
          do: Node.set_cookie(node, cookie)

      state = %{
        state
        | started: true,
          slots: slots,
          config: Keyword.put(state.config, :cookie, cookie)
      }

      state = Map.put(state, :address, listen_address(host))
      Enum.reduce(Map.keys(slots), state, &advance(&2, &1))
    else
      if state.warned, do: state, else: warn_not_distributed(state)
    end
  end

  # Once per pool: calls keep answering {:error, :not_distributed} without more lines.
  defp warn_not_distributed(state) do
    Logger.warning(
      "Mirage.Node: this VM is not distributed, so the node transport answers " <>
        "{:error, :not_distributed}. Start it with a name: `elixir --sname app -S mix ...` " <>
        "(or --name app@host), or call Node.start(:\"app@127.0.0.1\", :longnames) " <>
        "(epmd must be running: `epmd -daemon`)."
    )

    %{state | warned: true}
  end

  # The default pool's workers are mirage_<vm>_<i>; another pool's carry its name too,
  # so that two pools of one VM never ask EPMD for the same name.
  defp prefix(__MODULE__, alive), do: "mirage_#{alive}_"

  defp prefix(name, alive) do
    "mirage_#{alive}_#{String.replace(inspect(name), ~r/[^A-Za-z0-9_-]/, "_")}_"
  end

  defp cookie(config) do
    case config[:cookie] do
      nil -> Node.get_cookie()
      cookie when is_binary(cookie) -> String.to_atom(cookie)
      cookie -> cookie
    end
  end

  # Spawned workers listen where this VM's host name leads (loopback for
  # @127.0.0.1 or @localhost), so the VM reaches them the way EPMD tells it to.
  defp listen_address(host) do
    case :inet.getaddr(String.to_charlist(host), :inet) do
      {:ok, ip} -> ip |> :inet.ntoa() |> to_string()
      {:error, _} -> "127.0.0.1"
    end
  end

  @impl true
  def handle_call({:run, target, timeout, job}, {caller, _} = from, state) do
    state = start(state)

    if state.started do
      case place(state, target) do
        {:ok, node} ->
          {runner, state} = dispatch(state, node, caller, job)
          {:reply, {:ok, runner}, state}

        :gone ->
          # The connection that held the image is gone, and the image with it.
          {:reply, {:error, :worker_crashed}, state}

        :none ->
          if pending?(state),
            do: park(state, from, target, job, timeout),
            else: {:reply, {:error, :worker_crashed}, state}

        :busy ->
          park(state, from, target, job, timeout)
      end
    else
      {:reply, {:error, :not_distributed}, state}
    end
  end

  def handle_call({:checkin, runner, outcome, image, owner}, _from, state) do
    {node, state} = check_in(state, runner, outcome)
    {:reply, :ok, state |> hold(node, image, owner) |> serve_waiting()}
  end

  def handle_call(:workers, _from, state) do
    workers =
      state.slots
      |> Map.values()
      |> Enum.sort_by(&{&1.proc == nil, &1.node})
      |> Enum.map(fn slot ->
        %{
          node: slot.node,
          connected: slot.conn == :up,
          in_flight: slot.in_flight,
          served: slot.served,
          spawned: slot.proc != nil,
          os_pid: slot.worker && slot.worker.os_pid
        }
      end)

    {:reply, workers, state}
  end

  def handle_call(:live_handles, _from, state), do: {:reply, map_size(state.held), state}

  @impl true
  def handle_cast({:checkin, runner, outcome}, state) do
    {_node, state} = check_in(state, runner, outcome)
    {:noreply, serve_waiting(state)}
  end

  def handle_cast({:release, node, incarnation, handle}, state) do
    key = {node, incarnation, handle}
    state = forget_held(state, [key])

    case state.slots[node] do
      %Slot{conn: :up, incarnation: ^incarnation} -> cast(node, {:release, [handle]})
      _ -> :ok
    end

    {:noreply, state}
  end

  @impl true
  def handle_info({port, {:data, {:eol, line}}}, %{ports: ports} = state)
      when is_map_key(ports, port) do
    node = ports[port]
    slot = state.slots[node]

    case Worker.parse(slot.worker, line) do
      {:pid, worker} ->
        {:noreply, put_slot(state, %{slot | worker: worker})}

      :ready ->
        Worker.forget_cookie(slot.worker)
        {:noreply, advance(put_slot(state, %{slot | proc: :running}), node)}

      {:log, level, text} ->
        Logger.log(level, "#{node}: #{text}", mirage: :python)
        {:noreply, state}
    end
  end

  def handle_info({port, {:data, {:noeol, part}}}, %{ports: ports} = state)
      when is_map_key(ports, port) do
    Logger.warning("#{ports[port]}: #{part}", mirage: :python)
    {:noreply, state}
  end

  def handle_info({port, {:exit_status, status}}, %{ports: ports} = state)
      when is_map_key(ports, port) do
    node = ports[port]
    slot = state.slots[node]
    Worker.forget_cookie(slot.worker)

    Logger.warning(
      "Mirage.Node: worker #{node} (os pid #{slot.worker.os_pid}) exited with status #{status}"
    )

    state = %{state | ports: Map.delete(ports, port)}
    state = put_slot(state, %{slot | proc: :none, worker: nil})
    # Its connection dies with it (the nodedown may come before or after this).
    {:noreply, state |> down(node) |> retry_later(node)}
  end

  def handle_info({:connect_result, node, attempt, connected?}, state) do
    case state.slots[node] do
      %Slot{conn: :connecting, attempt: ^attempt} = slot ->
        if connected? do
          Node.monitor(node, true)
          Logger.debug("Mirage.Node: connected to #{node}")
          slot = %{slot | conn: :up, incarnation: make_ref(), failures: 0, attempt: nil}
          {:noreply, serve_waiting(put_slot(state, slot))}
        else
          if slot.failures == 2 do
            Logger.warning(
              "Mirage.Node: cannot connect to #{node} (is it running, with the same cookie, " <>
                "and are EPMD's port 4369 and its distribution port reachable?); retrying"
            )
          end

          slot = %{slot | conn: :down, attempt: nil}
          {:noreply, state |> put_slot(slot) |> retry_later(node) |> serve_waiting()}
        end

      _ ->
        {:noreply, state}
    end
  end

  def handle_info({:nodedown, node}, state) do
    case state.slots[node] do
      %Slot{conn: :up} ->
        Logger.warning("Mirage.Node: lost the connection to #{node}")
        {:noreply, state |> down(node) |> retry_later(node)}

      _ ->
        {:noreply, state}
    end
  end

  def handle_info({:retry, node}, state) do
    state = put_slot(state, %{state.slots[node] | retry: nil})
    {:noreply, advance(state, node)}
  end

  def handle_info({:wait_over, from}, state) do
    {over, waiting} = Enum.split_with(state.waiting, fn {f, _, _, _} -> f == from end)
    for {from, _, _, _} <- over, do: GenServer.reply(from, {:error, :timeout})
    {:noreply, %{state | waiting: waiting}}
  end

  def handle_info({:EXIT, pid, reason}, state) when is_pid(pid) do
    # A runner died (a bug): its call, if any, is over; its caller sees the DOWN.
    if reason != :normal, do: Logger.error("Mirage.Node: a runner exited: #{inspect(reason)}")
    {_node, state} = check_in(state, pid, :failed)
    {:noreply, %{state | idle: List.delete(state.idle, pid)}}
  end

  def handle_info({:DOWN, monitor, :process, pid, _}, state) do
    state =
      case state.owners do
        %{^pid => {^monitor, keys}} -> release_keys(state, MapSet.to_list(keys))
        _ -> state
      end

    {:noreply, state}
  end

  def handle_info(_message, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    for {_, %Slot{worker: %Worker{} = worker}} <- state.slots, do: Worker.stop(worker)
    :ok
  end

  # -- internals ----------------------------------------------------------------

  # Moves a worker one step towards connected: spawn it, or connect to it.
  defp advance(state, node) do
    slot = state.slots[node]

    cond do
      slot.retry != nil or slot.conn != :down ->
        state

      slot.proc == :none ->
        spawn_worker(state, slot)

      slot.proc == :starting ->
        state

      true ->
        connect(state, slot)
    end
  end

  defp spawn_worker(state, slot) do
    case Worker.open(slot.node, state.address, state.config[:cookie], state.config) do
      {:ok, worker} ->
        state = put_in(state.ports[worker.port], slot.node)
        put_slot(state, %{slot | proc: :starting, worker: worker})

      {:error, message} ->
        Logger.error("Mirage.Node: #{message}")
        state |> put_slot(%{slot | failures: slot.failures + 1}) |> retry_later(slot.node)
    end
  end

  defp connect(state, slot) do
    pool = self()
    attempt = make_ref()
    node = slot.node
    # Node.connect/1 may wait seconds for an unreachable host: not in the pool.
    spawn(fn -> send(pool, {:connect_result, node, attempt, Node.connect(node) == true}) end)
    put_slot(state, %{slot | conn: :connecting, attempt: attempt})
  end

  defp retry_later(state, node) when is_atom(node), do: retry_later(state, state.slots[node])

  defp retry_later(state, %Slot{} = slot) do
    if slot.retry, do: Process.cancel_timer(slot.retry)
    failures = slot.failures + 1
    delay = min(@retry_first * 2 ** min(failures - 1, 6), @retry_max)
    timer = Process.send_after(self(), {:retry, slot.node}, delay)
    put_slot(state, %{slot | retry: timer, failures: failures})
  end

  # The connection to `node` is gone: its images with it.
  defp down(state, node) do
    slot = state.slots[node]
    keys = for {{^node, _, _} = key, _} <- state.held, do: key
    state = forget_held(state, keys)
    state = put_slot(state, %{slot | conn: :down, incarnation: nil, attempt: nil})
    serve_waiting(state)
  end

  # Where a call can run now: {:ok, node}; :busy when its worker (or every connected
  # one) has max_in_flight calls; :none when no worker is connected; :gone when the
  # connection that held its image dropped.
  defp place(state, nil) do
    up = for {_, %Slot{conn: :up} = slot} <- state.slots, do: slot

    case Enum.filter(up, &(&1.in_flight < state.config[:max_in_flight])) do
      [] when up == [] -> :none
      [] -> :busy
      room -> {:ok, Enum.min_by(room, &{&1.in_flight, &1.served}).node}
    end
  end

  defp place(state, {node, incarnation}) do
    case state.slots[node] do
      %Slot{conn: :up, incarnation: ^incarnation, in_flight: n} ->
        if n < state.config[:max_in_flight], do: {:ok, node}, else: :busy

      _ ->
        :gone
    end
  end

  # Some worker may connect soon: a spawned one starting, or a connection under way.
  defp pending?(state) do
    Enum.any?(state.slots, fn {_, s} -> s.proc == :starting or s.conn == :connecting end)
  end

  # Waits for a worker with room (or one to connect): first in, first out, at most
  # `queue` calls; the call's deadline bounds the wait.
  defp park(state, from, target, job, timeout) do
    if length(state.waiting) >= state.config[:queue] do
      {:reply, {:error, :overloaded}, state}
    else
      timer = if timeout != :infinity, do: Process.send_after(self(), {:wait_over, from}, timeout)

      {:noreply, %{state | waiting: state.waiting ++ [{from, target, job, timer}]}}
    end
  end

  # Runs the parked calls that can run now, in order; answers those that never can.
  defp serve_waiting(%{waiting: []} = state), do: state

  defp serve_waiting(state) do
    {state, kept} =
      Enum.reduce(state.waiting, {%{state | waiting: []}, []}, fn entry, {state, kept} ->
        {{caller, _} = from, target, job, timer} = entry

        case place(state, target) do
          {:ok, node} ->
            cancel(timer)
            {runner, state} = dispatch(state, node, caller, job)
            GenServer.reply(from, {:ok, runner})
            {state, kept}

          :busy ->
            {state, [entry | kept]}

          outcome ->
            if outcome == :none and pending?(state) do
              {state, [entry | kept]}
            else
              cancel(timer)
              GenServer.reply(from, {:error, :worker_crashed})
              {state, kept}
            end
        end
      end)

    %{state | waiting: Enum.reverse(kept)}
  end

  defp cancel(nil), do: :ok
  defp cancel(timer), do: Process.cancel_timer(timer)

  # Hands the call to an idle runner (a new one if none is idle).
  defp dispatch(state, node, caller, {ref, op, request}) do
    {runner, idle} =
      case state.idle do
        [runner | idle] -> {runner, idle}
        [] -> {Mirage.Node.Runner.start_link(state.name), []}
      end

    slot = state.slots[node]
    send(runner, {:job, caller, ref, node, slot.incarnation, op, request})
    state = %{state | idle: idle, busy: Map.put(state.busy, runner, node)}
    {runner, put_slot(state, %{slot | in_flight: slot.in_flight + 1})}
  end

  defp check_in(state, runner, outcome) do
    case Map.pop(state.busy, runner) do
      {nil, _} ->
        {nil, state}

      {node, busy} ->
        slot = state.slots[node]
        served = if outcome == :served, do: slot.served + 1, else: slot.served
        slot = %{slot | in_flight: slot.in_flight - 1, served: served}
        {node, put_slot(%{state | busy: busy, idle: [runner | state.idle]}, slot)}
    end
  end

  # An image made on a connection that has dropped since is gone already.
  defp hold(state, node, {incarnation, handle}, owner) do
    case state.slots[node] do
      %Slot{conn: :up, incarnation: ^incarnation} when is_pid(owner) ->
        key = {node, incarnation, handle}
        state = put_in(state.held[key], owner)

        case state.owners do
          %{^owner => {monitor, keys}} ->
            put_in(state.owners[owner], {monitor, MapSet.put(keys, key)})

          _ ->
            put_in(state.owners[owner], {Process.monitor(owner), MapSet.new([key])})
        end

      %Slot{conn: :up, incarnation: ^incarnation} ->
        # Nobody will use it (the caller gave up or left): let it go now.
        cast(node, {:release, [handle]})
        state

      _ ->
        state
    end
  end

  defp release_keys(state, keys) do
    state = forget_held(state, keys)

    keys
    |> Enum.group_by(fn {node, incarnation, _} -> {node, incarnation} end, &elem(&1, 2))
    |> Enum.each(fn {{node, incarnation}, handles} ->
      case state.slots[node] do
        %Slot{conn: :up, incarnation: ^incarnation} -> cast(node, {:release, handles})
        _ -> :ok
      end
    end)

    state
  end

  defp forget_held(state, keys) do
    Enum.reduce(keys, state, fn key, state ->
      case Map.pop(state.held, key) do
        {nil, _} ->
          state

        {owner, held} ->
          state = %{state | held: held}
          {monitor, owned} = state.owners[owner]
          owned = MapSet.delete(owned, key)

          if MapSet.size(owned) == 0 do
            Process.demonitor(monitor, [:flush])
            %{state | owners: Map.delete(state.owners, owner)}
          else
            put_in(state.owners[owner], {monitor, owned})
          end
      end
    end)
  end

  defp cast(node, message),
    do: :erlang.send({:mirage, node}, {:"$gen_cast", message}, [:noconnect])

  defp put_slot(state, slot), do: put_in(state.slots[slot.node], slot)
end
