defmodule Mix.Tasks.Mirage.Check do
  @shortdoc "Runs every Mirage operation over a directory of images and sums up"
  @moduledoc """
  Vets a directory of images before going live: every operation of `Mirage.Check`
  on every file under `DIR` (recursively), each file within a deadline, with a
  progress bar, then a summary: files by verdict, each operation's answers by
  reason, the slowest files and the VM's peak memory.

      mix mirage.check DIR [--deadline MS] [--transport NAME] [--slowest N]

  `--deadline` is per file (default 30000 ms); `--transport` names a transport of
  `Mirage.Transport.transports/0`. Files are read one at a time.

  Exits with status 1 when any answer is a finding (`Mirage.Check.finding?/1`): an
  exception, `:internal_error`, or a deadline that passed. Reasons for bad data
  (`:truncated_image`, `:too_many_pixels`, ...) are answers, not findings.
  """
  use Mix.Task

  @impl true
  def run(args) do
    {opts, paths} =
      OptionParser.parse!(args,
        strict: [deadline: :integer, transport: :string, slowest: :integer]
      )

    dir =
      case paths do
        [dir] -> dir
        _ -> Mix.raise("usage: mix mirage.check DIR [--deadline MS] [--transport NAME]")
      end

    unless File.dir?(dir), do: Mix.raise("not a directory: #{dir}")
    Mix.Task.run("app.start")

    check_opts = [deadline: Keyword.get(opts, :deadline, 30_000)] ++ transport(opts[:transport])

    files =
      dir |> Path.join("**") |> Path.wildcard(match_dot: false) |> Enum.filter(&File.regular?/1)

    total = length(files)

    results =
      files
      |> Enum.with_index(1)
      |> Enum.map(fn {file, n} ->
        progress(n - 1, total, file)
        Mirage.Check.file(file, check_opts)
      end)

    progress(total, total, "")
    IO.write(:stderr, "\n")
    Mix.shell().info(Mirage.Check.summary(results, slowest: Keyword.get(opts, :slowest, 10)))

    findings =
      for r <- results,
          {op, answer} <- r.answers,
          Mirage.Check.finding?(answer),
          do: {r.file, op, answer}

    if findings != [] do
      rows =
        Enum.map(findings, fn {file, op, answer} -> [Mirage.Check.label(answer), op, file] end)

      Mix.shell().info("\n" <> Mirage.Check.table(["finding", "operation", "file"], rows))
      exit({:shutdown, 1})
    end
  end

  defp transport(nil), do: []

  defp transport(name) do
    case Enum.find(Map.keys(Mirage.Transport.transports()), &(Atom.to_string(&1) == name)) do
      nil -> Mix.raise("unknown transport #{name}; expected #{Mirage.Transport.expected()}")
      known -> [transport: known]
    end
  end

  @bar 30

  defp progress(done, total, file) do
    filled = if total == 0, do: @bar, else: div(done * @bar, total)
    bar = String.duplicate("#", filled) <> String.duplicate(".", @bar - filled)
    name = file |> Path.basename() |> String.slice(0, 40) |> String.pad_trailing(40)
    IO.write(:stderr, "\r[#{bar}] #{done}/#{total} #{name}")
  end
end
