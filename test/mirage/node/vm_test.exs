defmodule Mirage.Node.VMTest do
  # The node transport in child VMs: one without a node name (this one is
  # distributed), one killed with its workers running, and one with a short
  # net_ticktime calling a job that outlasts it.
  use ExUnit.Case, async: true

  alias Mirage.Test.Distributed

  @script """
  Application.put_env(:mirage, :node, spawn: 1)
  {:ok, _} = Application.ensure_all_started(:mirage)
  IO.inspect(Node.alive?(), label: "alive")
  IO.inspect(Mirage.info(File.read!("samples/rocket.jpg"), transport: :node), label: "info")
  IO.inspect(Mirage.info("x", transport: :node), label: "again")
  IO.inspect(Mirage.Node.workers(), label: "workers")
  IO.inspect(Mirage.Error.exception(reason: :not_distributed) |> Exception.message(), label: "message")
  """

  test "calls answer {:error, :not_distributed} and the log says how to distribute the VM" do
    ebin = :mirage |> :code.lib_dir() |> Path.join("ebin")
    {output, 0} = System.cmd("elixir", ["-pa", ebin, "-e", @script], stderr_to_stdout: true)

    assert output =~ "alive: false"
    assert output =~ "info: {:error, :not_distributed}"
    assert output =~ "workers: []"
    assert output =~ "message: \"not_distributed: the node transport needs a distributed VM"
    assert output =~ "again: {:error, :not_distributed}"
    # Said once, not at every call.
    assert length(String.split(output, "this VM is not distributed")) == 2
    assert output =~ "--sname"
    assert output =~ "Node.start"
  end

  @spawning ~S"""
  Application.put_env(:mirage, :node, spawn: 1)
  {:ok, _} = Application.ensure_all_started(:mirage)
  Mirage.Node.ensure_started()

  Enum.find(1..400, fn _ ->
    Process.sleep(50)
    match?([%{connected: true}], Mirage.Node.workers())
  end)

  IO.puts("worker #{hd(Mirage.Node.workers()).os_pid} vm #{System.pid()}")
  Process.sleep(:infinity)
  """

  @tag :node
  if reason = Mirage.ConformanceCase.unavailable(:node), do: @tag(skip: reason)

  test "a spawned worker does not outlive its VM, even one killed with SIGKILL" do
    ebin = :mirage |> :code.lib_dir() |> Path.join("ebin")
    name = "vmtest_#{System.pid()}@127.0.0.1"
    elixir = System.find_executable("elixir")

    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        {:line, 4096},
        args: ["--name", name, "-pa", ebin, "-e", @spawning]
      ])

    {worker, vm} = read_pids(port)
    assert alive?(worker) and alive?(vm)
    System.cmd("kill", ["-KILL", Integer.to_string(vm)])
    assert Enum.any?(1..100, fn _ -> Process.sleep(50) || not alive?(worker) end)
  end

  # The child VM drops a peer it hears nothing from for about 2 s; the worker's job
  # spins for 6 s holding the GIL (tests/node/fixture_node.py). The connection holds
  # only if the worker answers ticks while the job runs.
  @ticking ~S"""
  worker = String.to_atom(System.fetch_env!("MIRAGE_TICK_WORKER"))
  {:ok, _} = Application.ensure_all_started(:mirage)
  {:ok, _} = Mirage.Node.Pool.start_link(name: :tick_pool, nodes: [worker])

  Enum.find(1..400, fn _ ->
    Process.sleep(50)
    match?([%{connected: true}], Mirage.Node.workers(:tick_pool))
  end)

  :ok = :net_kernel.monitor_nodes(true, node_type: :all)
  {_, args} = Mirage.Options.validate!([timeout: 60_000], [], "tick")
  t0 = System.monotonic_time(:millisecond)
  reply = Mirage.Node.call(:tick_pool, :formats, nil, Map.put(args, :busy_ms, 6_000))
  took = System.monotonic_time(:millisecond) - t0
  down = receive do: ({:nodedown, node, _} -> node), after: (0 -> :none)
  hidden = worker in Node.list(:hidden)
  IO.puts("ticktime #{:net_kernel.get_net_ticktime()} reply #{elem(reply, 0)}")
  IO.puts("long #{took >= 6_000} down #{down} hidden #{hidden}")
  """

  @tag :node
  if reason = Mirage.ConformanceCase.unavailable(:node), do: @tag(skip: reason)

  test "a job longer than a short net_ticktime keeps the connection (child VM, ticktime 2)" do
    ebin = :mirage |> :code.lib_dir() |> Path.join("ebin")
    worker = "vmtick_#{System.pid()}@127.0.0.1"
    cookie = "tick_#{System.unique_integer([:positive])}"

    # tests.node.fixture_node is mirage.node with a formats/1 that can be made slow.
    {port, os_pid} =
      Distributed.start_python_node(
        "tests.node.fixture_node",
        worker,
        cookie,
        ["--net-ticktime", "2", "--jobs", "2"],
        File.cwd!()
      )

    try do
      wait_ready(port)

      {output, 0} =
        System.cmd(
          "elixir",
          ["--name", "vmtick_vm_#{System.pid()}@127.0.0.1", "--cookie", cookie] ++
            ["--erl", "-kernel net_ticktime 2", "-pa", ebin, "-e", @ticking],
          env: [{"MIRAGE_TICK_WORKER", worker}],
          stderr_to_stdout: true
        )

      assert output =~ "ticktime 2 reply ok"
      assert output =~ "long true down none hidden true"
    after
      Mirage.Node.Worker.kill(os_pid)
    end
  end

  defp wait_ready(port), do: Distributed.await_line(port, "mirage.node ready")

  defp read_pids(port) do
    receive do
      {^port, {:data, {:eol, "worker " <> pids}}} ->
        [worker, "vm", vm] = String.split(pids)
        {String.to_integer(worker), String.to_integer(vm)}

      {^port, {:data, _}} ->
        read_pids(port)

      {^port, {:exit_status, status}} ->
        flunk("the child VM exited with #{status}")
    after
      30_000 -> flunk("the child VM's worker did not connect")
    end
  end

  defp alive?(os_pid), do: match?({_, 0}, System.cmd("kill", ["-0", Integer.to_string(os_pid)]))
end
