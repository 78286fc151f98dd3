defmodule Mirage.Node.VMTest do
  # The node transport in child VMs: one without a node name (this one is
  # distributed), and one killed with its workers running.
  use ExUnit.Case, async: true

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
