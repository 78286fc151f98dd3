defmodule Mirage.Port.VMTest do
  # A separate VM per case: what a VM configured for the port transport loads, and
  # what it leaves behind when it ends.
  use ExUnit.Case, async: true

  @script """
  Application.put_env(:mirage, :transport, :port)
  Application.put_env(:mirage, :port, workers: 2)
  {:ok, _} = Application.ensure_all_started(:mirage)
  {:ok, info} = Mirage.info(File.read!("samples/rocket.jpg"))
  {:ok, _bytes, thumb} = Mirage.thumbnail(File.read!("samples/rocket.jpg"), 32, 32)
  IO.puts("sizes=\#{info.width}x\#{info.height},\#{thumb.width}x\#{thumb.height}")
  IO.puts("os_pids=" <> Enum.map_join(Mirage.Port.workers(), ",", & &1.os_pid))
  IO.puts("vm=" <> System.pid())
  IO.puts("nif_loaded=\#{:erlang.module_loaded(Mirage.NIF)}")
  IO.puts("libpython=\#{File.read!("/proc/self/maps") =~ "libpython"}")
  """

  defp child_vm(ending) do
    port =
      Port.open({:spawn_executable, System.find_executable("mix")}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        {:line, 4096},
        args: ["run", "--no-compile", "--no-start", "-e", @script <> ending],
        env: [{~c"MIX_ENV", ~c"test"}]
      ])

    collect(port, %{})
  end

  # Reads the child's report lines (key=value) up to the last one.
  defp collect(port, acc) do
    receive do
      {^port, {:data, {:eol, "libpython=" <> value}}} ->
        {port, Map.put(acc, "libpython", value)}

      {^port, {:data, {:eol, line}}} ->
        case String.split(line, "=", parts: 2) do
          [key, value] -> collect(port, Map.put(acc, key, value))
          _ -> collect(port, acc)
        end

      {^port, {:data, {:noeol, _}}} ->
        collect(port, acc)

      {^port, {:exit_status, status}} ->
        flunk("the child VM exited with status #{status} early: #{inspect(acc)}")
    after
      120_000 -> flunk("the child VM said nothing for 2 minutes: #{inspect(acc)}")
    end
  end

  defp pids(report), do: report["os_pids"] |> String.split(",") |> Enum.map(&String.to_integer/1)

  defp wait_gone(os_pids, tries \\ 500) do
    alive = Enum.filter(os_pids, &File.exists?("/proc/#{&1}"))

    cond do
      alive == [] -> :ok
      tries == 0 -> flunk("worker processes still alive after the VM ended: #{inspect(alive)}")
      true -> Process.sleep(10) && wait_gone(alive, tries - 1)
    end
  end

  defp wait_exit(port) do
    receive do
      {^port, {:exit_status, status}} -> status
      {^port, _} -> wait_exit(port)
    after
      60_000 -> flunk("the child VM did not exit")
    end
  end

  test "a VM configured for :port serves calls without loading the NIF or libpython" do
    {port, report} = child_vm("System.halt(0)")
    assert wait_exit(port) == 0
    assert report["sizes"] == "640x427,32x32"
    assert report["nif_loaded"] == "false"
    assert report["libpython"] == "false"
    assert length(pids(report)) == 2
    wait_gone(pids(report))
  end

  test "a VM configured for :nif starts the pool on the first :port call, not before" do
    script = """
    {:ok, _} = Application.ensure_all_started(:mirage)
    IO.puts("started=\#{inspect(Process.whereis(Mirage.Port.Pool))}")
    {:ok, %{width: 640}} = Mirage.info(File.read!("samples/rocket.jpg"), transport: :port)
    IO.puts("used=\#{is_pid(Process.whereis(Mirage.Port.Pool))}")
    IO.puts("workers=\#{length(Mirage.Port.workers())}")
    """

    {out, 0} =
      System.cmd("mix", ["run", "--no-compile", "--no-start", "-e", script],
        env: [{"MIX_ENV", "test"}],
        stderr_to_stdout: true
      )

    assert out =~ "started=nil"
    assert out =~ "used=true"
    # The default size: one worker per dirty CPU scheduler.
    assert out =~ "workers=#{:erlang.system_info(:dirty_cpu_schedulers)}"
  end

  # The child waits on its standard input, so it also ends if this test fails.
  test "a VM killed with SIGKILL leaves no worker process behind" do
    {port, report} = child_vm("IO.read(:stdio, :line)")
    os_pids = pids(report)
    assert Enum.all?(os_pids, &File.exists?("/proc/#{&1}"))
    System.cmd("kill", ["-KILL", report["vm"]])
    assert wait_exit(port) == 137
    wait_gone(os_pids)
  end
end
