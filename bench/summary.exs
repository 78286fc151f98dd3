# The benchmark targets over repeated runs: `make bench RUNS=3` runs bench/run.exs
# that many times, each leaving its targets in bench/results/run-*.etf, then this
# prints every target's median with the range (the issue's targets are medians of
# repeated runs) and writes it to bench/results/summary.md.

Code.require_file("report.exs", __DIR__)

defmodule Bench.Summary do
  import Bench.Report, only: [stats: 1, verdict: 3, figure: 2]

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

    also =
      case alongside do
        {what, _} ->
          figures = Enum.map(per_run, fn run -> run |> elem(5) |> elem(1) end)
          "; #{what} #{spread(figures, unit)}"

        nil ->
          ""
      end

    verdict = verdict(stats(values).median, limit, kind)
    "| #{label} | #{spread(values, unit)}#{also} | #{verdict} |"
  end

  defp spread(values, unit) do
    "#{figure(stats(values).median, unit)} (#{figure(Enum.min(values), "")}-#{figure(Enum.max(values), "")})"
  end
end

Bench.Summary.main()
