defmodule Mirage.Check do
  @moduledoc """
  Vets image files before going live: every operation Mirage offers, on each file,
  within a deadline, and a summary of the answers. `mix mirage.check DIR` runs it
  over a directory; Mirage's own corpus suite runs it over `../shared/corpus`.

  The operations, in order (`operations/0`):

    * `info` - `Mirage.info/2`
    * `resize` - `Mirage.from_bytes/2`, then `Mirage.resize/4` to 32x24
    * `fill:png`, `contain:webp`, `cover:jpg`, `exact:gif` - `Mirage.thumbnail/4`
      from the bytes, with that fit and output format
    * `orient` - `Mirage.from_bytes/2`, `Mirage.auto_orient/2`, `Mirage.to_bytes/2`

  Each answer is `:ok`, `{:error, reason}`, `:deadline` (the file's deadline passed
  before the operation answered) or `{:raised, message}` (an exception: a bug to
  report).
  """

  @typedoc "What one operation answered."
  @type answer :: :ok | {:error, atom()} | :deadline | {:raised, String.t()}

  @typedoc "One file's answers, its time in milliseconds and the VM's RSS after it."
  @type result :: %{
          file: String.t(),
          answers: [{String.t(), answer()}],
          ms: non_neg_integer(),
          rss: non_neg_integer() | nil
        }

  @thumbnails [{:fill, :png}, {:contain, :webp}, {:cover, :jpg}, {:exact, :gif}]

  @doc "The operations' names, in the order they run."
  @spec operations() :: [String.t()]
  def operations, do: Enum.map(steps([]), &elem(&1, 0))

  @doc """
  Runs every operation on the file at `path` (see `run/2` for the options) and
  records the VM's resident memory afterwards.
  """
  @spec file(Path.t(), keyword()) :: result()
  def file(path, opts \\ []) do
    result = run(File.read!(path), opts)
    Map.merge(result, %{file: path, rss: rss()})
  end

  @doc """
  Runs every operation on `bytes`. Options: `:deadline` (milliseconds for the whole
  file, default 30 000), `:transport` (passed to every call).
  """
  @spec run(binary(), keyword()) :: %{answers: [{String.t(), answer()}], ms: non_neg_integer()}
  def run(bytes, opts \\ []) when is_binary(bytes) do
    started = System.monotonic_time(:millisecond)
    deadline = started + Keyword.get(opts, :deadline, 30_000)
    common = Keyword.take(opts, [:transport])

    answers =
      for {name, step} <- steps(common) do
        {name, within(deadline, fn -> step.(bytes) end)}
      end

    %{answers: answers, ms: System.monotonic_time(:millisecond) - started}
  end

  defp steps(common) do
    [
      {"info", fn bytes -> Mirage.info(bytes, common) end},
      {"resize",
       fn bytes ->
         with {:ok, image} <- Mirage.from_bytes(bytes, common),
              do: Mirage.resize(image, 32, 24, common) |> released(image)
       end}
    ] ++
      for {fit, format} <- @thumbnails do
        {"#{fit}:#{format}",
         fn bytes -> Mirage.thumbnail(bytes, 64, 48, [fit: fit, format: format] ++ common) end}
      end ++
      [
        {"orient",
         fn bytes ->
           with {:ok, image} <- Mirage.from_bytes(bytes, common),
                {:ok, upright} <- Mirage.auto_orient(image, common) |> released(image) do
             Mirage.to_bytes(upright, common) |> released(upright)
           end
         end}
      ]
  end

  # Frees a held image as soon as its step is done (a corpus holds many).
  defp released(answer, image) do
    Mirage.release(image)
    answer
  end

  # Runs `fun` in a task of its own until `deadline`; a task past it is killed.
  defp within(deadline, fun) do
    left = deadline - System.monotonic_time(:millisecond)

    if left <= 0 do
      :deadline
    else
      task =
        Task.async(fn ->
          try do
            normalise(fun.())
          rescue
            e -> {:raised, Exception.format(:error, e, __STACKTRACE__)}
          end
        end)

      case Task.yield(task, left) || Task.shutdown(task, :brutal_kill) do
        {:ok, answer} -> answer
        _late -> :deadline
      end
    end
  end

  defp normalise({:ok, _}), do: :ok
  defp normalise({:ok, _, _}), do: :ok
  defp normalise({:error, reason}), do: {:error, reason}
  defp normalise(other), do: {:raised, "unexpected answer: #{inspect(other, limit: 5)}"}

  @doc """
  One word for a file's answers: `:ok` when every operation succeeded, else the
  first answer that was not `:ok`.
  """
  @spec verdict([{String.t(), answer()}]) :: answer()
  def verdict(answers) do
    Enum.find_value(answers, :ok, fn {_name, answer} -> if answer != :ok, do: answer end)
  end

  @doc """
  Whether an answer is a finding to look into rather than a documented outcome: an
  exception, `:internal_error`, a reason outside `Mirage.Error.reasons/0`, or a
  deadline that passed.
  """
  @spec finding?(answer()) :: boolean()
  def finding?(:ok), do: false
  def finding?({:error, :internal_error}), do: true
  def finding?({:error, reason}), do: reason not in Mirage.Error.reasons()
  def finding?(_deadline_or_raised), do: true

  @doc "A short label for an answer, for tables."
  @spec label(answer()) :: String.t()
  def label(:ok), do: "ok"
  def label({:error, reason}), do: Atom.to_string(reason)
  def label(:deadline), do: "deadline"
  def label({:raised, _}), do: "raised"

  @doc """
  The summary of `results` as text: files by verdict, every operation's answers by
  reason, the slowest files and the VM's peak resident memory.
  """
  @spec summary([result()], keyword()) :: String.t()
  def summary(results, opts \\ []) do
    slowest = Keyword.get(opts, :slowest, 10)

    verdicts =
      results
      |> Enum.frequencies_by(&label(verdict(&1.answers)))
      |> Enum.sort_by(fn {label, count} -> {-count, label} end)

    by_op =
      for name <- operations() do
        counts =
          results
          |> Enum.map(fn r -> r.answers |> List.keyfind(name, 0, {name, :deadline}) |> elem(1) end)
          |> Enum.frequencies_by(&label/1)
          |> Enum.sort_by(fn {label, count} -> {-count, label} end)
          |> Enum.map_join(", ", fn {label, count} -> "#{label} #{count}" end)

        [name, counts]
      end

    slow =
      results
      |> Enum.sort_by(& &1.ms, :desc)
      |> Enum.take(slowest)
      |> Enum.map(&[Integer.to_string(&1.ms), label(verdict(&1.answers)), &1.file])

    Enum.join(
      [
        "#{length(results)} files",
        table(
          ["verdict", "files"],
          Enum.map(verdicts, fn {l, c} -> [l, Integer.to_string(c)] end)
        ),
        table(["operation", "answers"], by_op),
        table(["ms", "verdict", "slowest files"], slow),
        memory_line(results)
      ],
      "\n\n"
    )
  end

  defp memory_line(results) do
    growth =
      results
      |> Enum.chunk_every(2, 1, :discard)
      |> Enum.map(fn [a, b] -> {(b.rss || 0) - (a.rss || 0), b.file} end)
      |> Enum.max_by(&elem(&1, 0), fn -> {0, nil} end)

    peak = peak_rss()

    [
      if(peak, do: "peak resident memory of the VM: #{mib(peak)}"),
      if(elem(growth, 1) && elem(growth, 0) > 0,
        do: "largest growth after one file: #{mib(elem(growth, 0))} (#{elem(growth, 1)})"
      )
    ]
    |> Enum.reject(&is_nil/1)
    |> Enum.join("\n")
  end

  defp mib(bytes), do: "#{Float.round(bytes / 1_048_576, 1)} MiB"

  @doc "A plain-text table with a header row and left-aligned columns."
  @spec table([String.t()], [[String.t()]]) :: String.t()
  def table(header, rows) do
    widths =
      Enum.zip_with([header | rows], fn column ->
        column |> Enum.map(&String.length/1) |> Enum.max()
      end)

    line = fn cells ->
      cells
      |> Enum.zip(widths)
      |> Enum.map_join("  ", fn {c, w} -> String.pad_trailing(c, w) end)
      |> String.trim_trailing()
    end

    Enum.map_join([header, Enum.map(widths, &String.duplicate("-", &1)) | rows], "\n", line)
  end

  @doc "The VM's resident memory now, in bytes (Linux; `nil` elsewhere)."
  @spec rss() :: non_neg_integer() | nil
  def rss, do: status_kib("VmRSS")

  @doc "The VM's peak resident memory so far, in bytes (Linux; `nil` elsewhere)."
  @spec peak_rss() :: non_neg_integer() | nil
  def peak_rss, do: status_kib("VmHWM")

  defp status_kib(key) do
    with {:ok, status} <- File.read("/proc/self/status"),
         [_, kib] <- Regex.run(~r/^#{key}:\s+(\d+) kB/m, status) do
      String.to_integer(kib) * 1024
    else
      _ -> nil
    end
  end
end
