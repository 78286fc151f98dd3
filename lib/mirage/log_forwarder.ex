defmodule Mirage.LogForwarder do
  @moduledoc """
  Receives what the embedded Python prints (stdout, stderr, warnings, `logging`) and
  passes it to `Logger`, tagged with `mirage: :python` metadata. The NIF sends
  `{:mirage_log, level, line}` to this registered process; while it is not running
  (the `:mirage` application not started) lines go to the VM's stderr instead.

  What one call may log is capped by the Python side (the first lines, then one line
  counting the rest), and at most 1000 lines wait in this process's mailbox: the NIF
  drops lines beyond that and this process logs how many once it has caught up, so a
  slow Logger costs lines, never unbounded memory.
  """
  use GenServer
  require Logger

  @doc false
  def start_link(_opts), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @impl true
  def init(nil), do: {:ok, nil}

  @impl true
  def handle_info({:mirage_log, level, line}, state)
      when level in [:debug, :info, :warning, :error] and is_binary(line) do
    Logger.log(level, line, mirage: :python)

    case delivered() do
      0 ->
        :ok

      dropped ->
        Logger.warning("#{dropped} lines of Python output dropped: Logger fell behind",
          mirage: :python
        )
    end

    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  # Lines only come from a loaded NIF; a line sent by hand must not crash the process.
  defp delivered do
    Mirage.NIF.log_delivered()
  rescue
    _ in [UndefinedFunctionError, ErlangError] -> 0
  end
end
