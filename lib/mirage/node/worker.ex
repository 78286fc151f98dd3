defmodule Mirage.Node.Worker do
  @moduledoc false
  # A local worker node Mirage starts itself: `python -m mirage.node` as an OS
  # process behind a small sh wrapper. The wrapper prints the interpreter's OS pid
  # first, and ends it (SIGTERM) when its stdin closes, which happens when the port
  # is closed or when the VM dies: no worker outlives the VM that started it. It
  # exits with the worker's status when the worker ends on its own.
  #
  # The cookie goes in a file only the VM's user can read, removed once the worker
  # has read it (its ready line) or has exited; never on the command line.

  require Logger

  @wrapper """
  exec 3<&0
  "$0" "$@" </dev/null &
  child=$!
  echo "mirage.node pid $child"
  (read -r _ <&3; kill -TERM "$child" 2>/dev/null) &
  watcher=$!
  wait "$child"
  status=$?
  kill "$watcher" 2>/dev/null
  exit "$status"
  """

  defstruct [:port, :os_pid, :cookie_file, :name]

  @type t :: %__MODULE__{
          port: port(),
          os_pid: pos_integer() | nil,
          cookie_file: Path.t(),
          name: node()
        }

  @doc false
  # Starts the worker named `name`, listening on `address`, with `cookie`. Its output
  # arrives at the calling process as port messages, read by parse/2.
  @spec open(node(), String.t(), atom(), keyword()) :: {:ok, t()} | {:error, String.t()}
  def open(name, address, cookie, config) do
    with {:ok, python} <- Mirage.Python.interpreter(),
         {:ok, sh} <- find_sh(),
         {:ok, cookie_file} <- write_cookie(name, cookie) do
      args =
        ["-c", @wrapper, python.python, "-m", "mirage.node"] ++
          ["--name", Atom.to_string(name), "--cookie-file", cookie_file, "--address", address] ++
          ["--net-ticktime", Integer.to_string(net_ticktime())] ++
          optional(config, :jobs, "--jobs") ++ optional(config, :max_handles, "--max-handles")

      port =
        Port.open({:spawn_executable, sh}, [
          :binary,
          :exit_status,
          :stderr_to_stdout,
          {:line, 8192},
          args: args,
          env: [{~c"PYTHONPATH", String.to_charlist(python.path)}],
          cd: python.path
        ])

      {:ok, %__MODULE__{port: port, cookie_file: cookie_file, name: name}}
    end
  rescue
    error in ErlangError -> {:error, "cannot start the worker: #{Exception.message(error)}"}
  end

  # During a change of net_ticktime (net_kernel:set_net_ticktime/2) the VM answers
  # the time it is changing to, which is what a new worker should use.
  defp net_ticktime do
    case :net_kernel.get_net_ticktime() do
      {:ongoing_change_to, seconds} -> seconds
      seconds when is_integer(seconds) -> seconds
      :ignored -> 60
    end
  end

  defp optional(config, key, flag) do
    case config[key] do
      nil -> []
      value -> [flag, to_string(value)]
    end
  end

  defp find_sh do
    case System.find_executable("sh") do
      nil -> {:error, "no sh on PATH to start the worker with"}
      sh -> {:ok, sh}
    end
  end

  defp write_cookie(name, cookie) do
    dir = Path.join(System.tmp_dir!(), "mirage-node-#{System.pid()}")
    file = Path.join(dir, "#{name}-#{System.unique_integer([:positive])}.cookie")

    # Created empty and made private before the cookie goes in.
    with :ok <- File.mkdir_p(dir),
         :ok <- File.chmod(dir, 0o700),
         :ok <- File.write(file, ""),
         :ok <- File.chmod(file, 0o600),
         :ok <- File.write(file, Atom.to_string(cookie)) do
      {:ok, file}
    else
      {:error, reason} ->
        {:error, "cannot write the cookie file in #{dir}: #{:file.format_error(reason)}"}
    end
  end

  @doc false
  # What a line of the worker's output means.
  @spec parse(t(), binary()) :: {:pid, t()} | :ready | {:log, Logger.level(), String.t()}
  def parse(worker, "mirage.node pid " <> pid) do
    case Integer.parse(pid) do
      {os_pid, ""} -> {:pid, %{worker | os_pid: os_pid}}
      _ -> {:log, :warning, "mirage.node pid " <> pid}
    end
  end

  def parse(_worker, "mirage.node ready " <> _), do: :ready

  def parse(_worker, "mirage.node " <> rest) do
    case String.split(rest, " ", parts: 2) do
      ["DEBUG", line] -> {:log, :debug, line}
      ["INFO", line] -> {:log, :debug, line}
      ["WARNING", line] -> {:log, :warning, line}
      ["ERROR", line] -> {:log, :error, line}
      _ -> {:log, :warning, rest}
    end
  end

  def parse(_worker, line), do: {:log, :warning, line}

  @doc false
  # The cookie file is needed only until the worker has read it.
  @spec forget_cookie(t()) :: :ok
  def forget_cookie(%__MODULE__{cookie_file: file}) do
    _ = File.rm(file)
    # The directory goes too once no other worker's cookie is in it.
    _ = File.rmdir(Path.dirname(file))
    :ok
  end

  @doc false
  # Stops the worker: SIGTERM, then SIGKILL if it is still there after `grace` ms.
  @spec stop(t(), non_neg_integer()) :: :ok
  def stop(%__MODULE__{} = worker, grace \\ 2_000) do
    forget_cookie(worker)
    close(worker.port)

    if worker.os_pid do
      signal(worker.os_pid, "TERM")
      unless gone?(worker.os_pid, grace), do: signal(worker.os_pid, "KILL")
    end

    :ok
  end

  @doc false
  # SIGKILL at once (tests use it to kill a worker mid-request).
  @spec kill(pos_integer()) :: :ok
  def kill(os_pid), do: signal(os_pid, "KILL")

  defp close(port) do
    Port.close(port)
  rescue
    ArgumentError -> :ok
  end

  defp signal(os_pid, signal) do
    _ = System.cmd("kill", ["-#{signal}", Integer.to_string(os_pid)], stderr_to_stdout: true)
    :ok
  end

  defp gone?(os_pid, wait) do
    {_, status} = System.cmd("kill", ["-0", Integer.to_string(os_pid)], stderr_to_stdout: true)

    cond do
      status != 0 -> true
      wait <= 0 -> false
      true -> Process.sleep(50) && gone?(os_pid, wait - 50)
    end
  end
end
