# What bench/run.exs and bench/summary.exs both need: the statistics of a sample
# and how a target is judged and printed. Loaded by each with Code.require_file/2.

defmodule Bench.Report do
  @doc "Median and quartiles (linear interpolation between ranks)."
  def stats(samples) do
    sorted = Enum.sort(samples)

    %{
      median: percentile(sorted, 0.5),
      p25: percentile(sorted, 0.25),
      p75: percentile(sorted, 0.75)
    }
  end

  defp percentile(sorted, p) do
    rank = p * (length(sorted) - 1)
    low = Enum.at(sorted, floor(rank))
    high = Enum.at(sorted, ceil(rank))
    low + (high - low) * (rank - floor(rank))
  end

  @doc "A target's verdict: `:max` limits are upper bounds, `:min` lower ones."
  def verdict(value, limit, kind) do
    met = if kind == :max, do: value <= limit, else: value >= limit
    if met, do: "met", else: "**missed**"
  end

  def figure(value, unit), do: :erlang.float_to_binary(value / 1, decimals: 2) <> unit
end
