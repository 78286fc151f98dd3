# The benchmark targets over repeated runs: `make bench RUNS=3` runs bench/run.exs
# that many times, each leaving its targets in bench/results/run-*.etf, then this
# prints every target's median with the range (the issue's targets are medians of
# repeated runs) and writes it to bench/results/summary.md.

defmodule Bench.Summary do
  @results Path.expand("results", __DIR__)

  def main do
    runs =
      Path.join(@results, "run-*.etf")
      |> Path.wildcard()
      |> Enum.sort()
      |> Enum.map(&(&1 |> File.read!() |> :erlang.binary_to_term()))

    if runs == [], do: raise("no runs in #{@results}: run bench/run.exs first")

    rows =
      runs
      |> Enum.zip()
      |> Enum.map(fn per_run -> row(Tuple.to_list(per_run)) end)

    report = """
    | target | median of #{length(runs)} run(s) (range) | verdict |
    |---|---|---|
    #{Enum.join(rows, "\n")}
    """

    IO.puts("\n" <> report)
    File.write!(Path.join(@results, "summary.md"), report)
  end

  defp row([{label, _, limit, kind, unit, alongside} | _] = per_run) do
    values = Enum.map(per_run, &elem(&1, 1))
    median = median(values)

    also =
      case alongside do
        {what, _} ->
          figures = Enum.map(per_run, fn run -> run |> elem(5) |> elem(1) end)
          "; #{what} #{spread(figures, unit)}"

        nil ->
          ""
      end

    verdict = if met?(median, limit, kind), do: "met", else: "**missed**"
    "| #{label} | #{spread(values, unit)}#{also} | #{verdict} |"
  end

  defp spread(values, unit) do
    "#{figure(median(values), unit)} (#{figure(Enum.min(values), "")}-#{figure(Enum.max(values), "")})"
  end

  defp median(values) do
    sorted = Enum.sort(values)
    n = length(sorted)
    mid = div(n, 2)

    if rem(n, 2) == 1,
      do: Enum.at(sorted, mid),
      else: (Enum.at(sorted, mid - 1) + Enum.at(sorted, mid)) / 2
  end

  defp met?(value, limit, :max), do: value <= limit
  defp met?(value, limit, :min), do: value >= limit

  defp figure(value, unit), do: :erlang.float_to_binary(value / 1, decimals: 2) <> unit
end

Bench.Summary.main()
