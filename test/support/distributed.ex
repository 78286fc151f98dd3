defmodule Mirage.Test.Distributed do
  @moduledoc false
  # Makes the test VM a distributed node, for the node transport's tests: starts EPMD
  # when none answers (and stops it after the suite if it started it and nothing else
  # registered meanwhile), then Node.start/2 with a long name on 127.0.0.1, which is
  # where the workers Mirage spawns listen too. Done once; the outcome is kept.

  @key {__MODULE__, :outcome}

  @doc "`:ok` once the VM is distributed, or `{:error, why}` (the tests then skip)."
  @spec ensure() :: :ok | {:error, String.t()}
  def ensure do
    case :persistent_term.get(@key, nil) do
      nil ->
        outcome = start()
        :persistent_term.put(@key, outcome)
        outcome

      outcome ->
        outcome
    end
  end

  defp start do
    cond do
      Node.alive?() ->
        :ok

      System.find_executable("epmd") == nil ->
        {:error, "epmd is not on PATH (Erlang's distribution cannot start)"}

      true ->
        with :ok <- epmd(),
             {:ok, _} <-
               Node.start(:"mirage_test_#{System.pid()}@127.0.0.1", :longnames) do
          ExUnit.after_suite(fn _ -> stop() end)
          :ok
        else
          {:error, reason} when is_binary(reason) ->
            {:error, reason}

          {:error, reason} ->
            {:error, "Node.start/2 failed: #{inspect(reason, limit: 6)}"}
        end
    end
  end

  defp epmd do
    if epmd_answers?() do
      :ok
    else
      {_, 0} = System.cmd("epmd", ["-daemon"])
      :persistent_term.put({__MODULE__, :started_epmd}, true)
      wait_for_epmd(50)
    end
  end

  defp epmd_answers? do
    match?({_, 0}, System.cmd("epmd", ["-names"], stderr_to_stdout: true))
  end

  defp wait_for_epmd(0), do: {:error, "epmd -daemon did not start"}

  defp wait_for_epmd(tries) do
    if epmd_answers?(), do: :ok, else: Process.sleep(100) && wait_for_epmd(tries - 1)
  end

  # The workers go with the default pool; EPMD only if this suite started it and no
  # other node registered with it (epmd -kill refuses while any is registered).
  defp stop do
    _ = Supervisor.terminate_child(Mirage.Supervisor, Mirage.Node.Pool)
    Node.stop()

    if :persistent_term.get({__MODULE__, :started_epmd}, false),
      do: System.cmd("epmd", ["-kill"], stderr_to_stdout: true)

    :ok
  end

  @doc "Calls `fun` until it returns a truthy value, for at most `ms` (`Mirage.Test.Wait`)."
  @spec wait_until((() -> term()), non_neg_integer()) :: term()
  def wait_until(fun, ms \\ 20_000), do: Mirage.Test.Wait.until(fun, ms)

  @doc """
  Starts `python -m module` (`mirage.node` or a test fixture built on it) as a worker
  named `name` on 127.0.0.1 with `cookie` in its environment; `{port, os_pid}`. Its
  output arrives as lines (`{:line, 4096}`). `path` is its PYTHONPATH (default: the
  staged package).
  """
  @spec start_python_node(String.t(), String.t(), String.t(), [String.t()], String.t() | nil) ::
          {port(), non_neg_integer()}
  def start_python_node(module, name, cookie, extra, path \\ nil) do
    {:ok, python} = Mirage.Python.interpreter()

    port =
      Port.open({:spawn_executable, python.python}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        {:line, 4096},
        args: ["-m", module, "--name", name, "--address", "127.0.0.1"] ++ extra,
        env: [
          {~c"PYTHONPATH", String.to_charlist(path || python.path)},
          {~c"MIRAGE_COOKIE", String.to_charlist(cookie)}
        ]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    {port, os_pid}
  end

  @doc "Waits for a line of `port`'s output containing `text`; flunks if it exits first."
  @spec await_line(port(), String.t()) :: :ok
  def await_line(port, text) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        if String.contains?(line, text), do: :ok, else: await_line(port, text)

      {^port, {:data, {:noeol, _}}} ->
        await_line(port, text)

      {^port, {:exit_status, status}} ->
        flunk_exit(text, status)
    after
      30_000 -> raise(ExUnit.AssertionError, message: "no line #{inspect(text)} in time")
    end
  end

  defp flunk_exit(text, status),
    do: raise(ExUnit.AssertionError, message: "exited with #{status} before #{inspect(text)}")

  @doc "The default pool with `spawn` workers, all connected (the conformance suite's)."
  @spec default_pool(pos_integer()) :: :ok
  def default_pool(spawn) do
    Application.put_env(:mirage, :node, spawn: spawn)
    Mirage.Node.ensure_started()

    wait_until(fn ->
      workers = Mirage.Node.workers()
      length(workers) == spawn and Enum.all?(workers, & &1.connected)
    end)

    :ok
  end
end
