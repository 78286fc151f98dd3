defmodule Mirage.Test.RSS do
  @moduledoc false

  @doc "Resident memory of an OS process (default: this VM), in whole MiB."
  @spec mb(pos_integer() | String.t()) :: non_neg_integer()
  def mb(os_pid \\ "self") do
    "/proc/#{os_pid}/status"
    |> File.read!()
    |> String.split("\n")
    |> Enum.find_value(fn line ->
      case String.split(line) do
        ["VmRSS:", kb, "kB"] -> div(String.to_integer(kb), 1024)
        _ -> nil
      end
    end)
  end
end
