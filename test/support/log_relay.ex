defmodule Mirage.Test.LogRelay do
  @moduledoc false
  # A :logger handler that sends every event's message, as a string, to a test
  # process: `{:logged, message}`. For lines that arrive after a call returns (a node
  # worker's stderr travels apart from its replies), to wait on with assert_receive.

  def attach(pid) do
    id = :"mirage_log_relay_#{System.unique_integer([:positive])}"
    :ok = :logger.add_handler(id, __MODULE__, %{config: %{pid: pid}})
    id
  end

  def detach(id), do: :logger.remove_handler(id)

  @doc false
  def log(%{msg: msg}, %{config: %{pid: pid}}), do: send(pid, {:logged, text(msg)})

  defp text({:string, chardata}), do: IO.chardata_to_string(chardata)
  defp text({:report, report}), do: inspect(report)
  defp text({format, args}), do: format |> :io_lib.format(args) |> IO.chardata_to_string()
end
