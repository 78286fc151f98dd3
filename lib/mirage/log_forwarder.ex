defmodule Mirage.LogForwarder do
  @moduledoc """
  Receives what the embedded Python prints (stdout, stderr, warnings, `logging`) and
  passes it to `Logger`, tagged with `mirage: :python` metadata. The NIF sends
  `{:mirage_log, level, line}` to this registered process; while it is not running
  (the `:mirage` application not started) lines go to the VM's stderr instead.
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
    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}
end
