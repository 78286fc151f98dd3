# Mirage benchmarks: `make bench` (or `MIX_ENV=prod mix run bench/run.exs`).
#
# Every number is a ratio against a baseline measured in the same run: the Python
# baselines (bench/baselines.py) run in one helper process whose requests are
# interleaved, in shuffled order, with the NIF's. Absolute times vary by machine.
# Prints a markdown table and writes it to bench/results/latest.md.

defmodule Bench do
  @shared Path.expand("../../shared", __DIR__)
  @python System.get_env("MIRAGE_PYTHON") || Path.expand("../.venv/bin/python", __DIR__)

  # Columns measured in Elixir; a port or node transport is one more entry here.
  @transports [
    nif: &Mirage.thumbnail/4
  ]
  # Columns measured by bench/baselines.py.
  @baselines [:mirage_py, :pillow_fast, :pillow_naive, :vips, :convert]

  @cases [
    {"12 MP JPEG", "bench-images/photo_12mp.jpg", 15},
    {"2 MP JPEG", "bench-images/photo_2mp.jpg", 25},
    {"1000x1000 RGBA PNG", "bench-images/photo_rgba_1000.png", 15},
    {"2000x1500 WebP", "bench-images/photo_2000x1500.webp", 15},
    {"480x320 GIF, 30 frames", "bench-images/anim_480x320_30f.gif", 5},
    {"640x427 JPEG", "bench-images/real_rocket_640x427.jpg", 120}
  ]

  def main do
    unless File.dir?(@shared), do: raise("bench needs #{@shared} (the benchmark images)")
    py = start_python()
    available = Enum.filter(@baselines, &(ask(py, "have #{&1}") == "yes"))
    missing = @baselines -- available
    columns = Keyword.keys(@transports) ++ available

    if missing != [], do: IO.puts("Baselines not installed (skipped): #{inspect(missing)}")

    rows =
      for {name, file, rounds} <- @cases, do: {name, measure_case(py, file, rounds, available)}

    calls = per_call(py)
    scaling = throughput(py)
    memory = memory()

    report = render(columns, rows, calls, scaling, memory)
    IO.puts("\n" <> report)
    File.mkdir_p!(Path.expand("results", __DIR__))
    File.write!(Path.expand("results/latest.md", __DIR__), report)
  end

  # -- thumbnails ---------------------------------------------------------------

  defp measure_case(py, file, rounds, baselines) do
    path = Path.join(@shared, file)
    bytes = File.read!(path)
    quality = 85

    runners =
      for({name, fun} <- @transports, do: {name, fn -> time_elixir(fun, bytes, quality) end}) ++
        for name <- baselines do
          {name, fn -> ask_number(py, "run #{name} #{path} 256 256 #{quality}") end}
        end

    # Warm up every runner once, then interleave them in a new order each round.
    Enum.each(runners, fn {_, run} -> run.() end)

    samples =
      for _ <- 1..rounds, {name, run} <- Enum.shuffle(runners), reduce: %{} do
        acc -> Map.update(acc, name, [run.()], &[run.() | &1])
      end

    Map.new(samples, fn {name, us} -> {name, stats(us)} end)
  end

  defp time_elixir(fun, bytes, quality) do
    {us, {:ok, _bytes, _image}} = :timer.tc(fn -> fun.(bytes, 256, 256, quality: quality) end)
    us
  end

  # -- per-call overhead -----------------------------------------------------------

  defp per_call(py) do
    tiny = Path.join(@shared, "corpus/pngsuite/pngsuite/basn2c08.png")
    bytes = File.read!(tiny)
    count = 20_000

    [nif_info] = loops(count, [fn -> {:ok, _} = Mirage.info(bytes) end])
    py_info = ask_number(py, "loop mirage_py #{tiny} #{count}")
    pillow_open = ask_number(py, "loop pillow_open #{tiny} #{count}")

    # The floor is mostly the trip to a dirty scheduler and back, whose cost depends
    # on whether the threads involved are awake. An ERTS function that runs on a
    # dirty I/O scheduler and does nothing else, measured in alternating batches,
    # shows how much of the floor is Mirage's.
    [floor, hop] =
      loops(count, [
        fn -> Mirage.NIF.live_handles() end,
        fn -> :erts_debug.dirty_io(:scheduler, :type) end
      ])

    %{nif_info: nif_info, py_info: py_info, pillow_open: pillow_open, floor: floor, hop: hop}
  end

  # The median over batches of 100 calls: precise below a microsecond, and a
  # scheduler hiccup or garbage collection spoils one batch, not the answer.
  # Several functions take turns, batch by batch, so they see the same conditions.
  defp loops(count, funs) do
    Enum.each(funs, & &1.())

    1..div(count, 100)
    |> Enum.flat_map(fn _ ->
      for {fun, i} <- Enum.with_index(funs) do
        {us, :ok} = :timer.tc(fn -> Enum.each(1..100, fn _ -> fun.() end) end)
        {i, us / 100}
      end
    end)
    |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))
    |> Enum.sort()
    |> Enum.map(fn {_, batches} -> stats(batches).median end)
  end

  # -- throughput ------------------------------------------------------------------

  @seconds 4
  defp throughput(py) do
    path = Path.join(@shared, "bench-images/photo_12mp.jpg")
    bytes = File.read!(path)
    levels = Enum.uniq([1, 2, System.schedulers_online()])

    for n <- levels do
      nif = rate(n, fn -> {:ok, _, _} = Mirage.thumbnail(bytes, 256, 256, quality: 85) end)
      threads = ask_number(py, "threads pillow_fast #{path} 256 256 #{n} #{@seconds}")
      {n, nif, threads}
    end
  end

  defp rate(n, fun) do
    deadline = System.monotonic_time(:millisecond) + @seconds * 1000
    started = System.monotonic_time(:microsecond)

    done =
      1..n
      |> Enum.map(fn _ -> Task.async(fn -> work_until(deadline, fun, 0) end) end)
      |> Enum.map(&Task.await(&1, :infinity))
      |> Enum.sum()

    done / ((System.monotonic_time(:microsecond) - started) / 1.0e6)
  end

  defp work_until(deadline, fun, done) do
    if System.monotonic_time(:millisecond) < deadline do
      fun.()
      work_until(deadline, fun, done + 1)
    else
      done
    end
  end

  # -- memory ------------------------------------------------------------------------

  # Each level in a fresh VM, so memory freed (but kept by malloc) in one run cannot
  # hide what the next one needs.
  defp memory do
    for in_flight <- [1, 2] do
      {out, 0} =
        System.cmd("mix", ["run", "bench/memory.exs", to_string(in_flight)],
          env: [{"MIX_ENV", "prod"}],
          cd: Path.expand("..", __DIR__)
        )

      [mb] = Regex.run(~r/growth_per_in_flight_mb=([\d.]+)/, out, capture: :all_but_first)
      {in_flight, String.to_float(mb)}
    end
  end

  # -- the Python side -------------------------------------------------------------

  defp start_python do
    Port.open({:spawn_executable, @python}, [
      :binary,
      {:line, 4096},
      :exit_status,
      args: [Path.expand("baselines.py", __DIR__)]
    ])
  end

  defp ask(port, line) do
    Port.command(port, line <> "\n")

    receive do
      {^port, {:data, {:eol, "error " <> reason}}} -> raise "baseline failed: #{line}: #{reason}"
      {^port, {:data, {:eol, answer}}} -> answer
      {^port, {:exit_status, status}} -> raise "bench/baselines.py exited with #{status}"
    end
  end

  defp ask_number(port, line) do
    {value, ""} = Float.parse(ask(port, line))
    value
  end

  # -- statistics and the report ---------------------------------------------------

  defp stats(samples) do
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

  defp ms(us), do: :erlang.float_to_binary(us / 1000, decimals: 1)
  defp x(ratio), do: :erlang.float_to_binary(ratio, decimals: 2) <> "x"

  defp verdict(true), do: "met"
  defp verdict(false), do: "**missed**"

  defp render(columns, rows, calls, scaling, memory) do
    header =
      "| case (-> 256x256 fill, q85) | " <>
        Enum.map_join(columns, " | ", &"#{&1} ms") <>
        " | nif / pillow_fast | nif vs vips |\n" <>
        "|---|" <> String.duplicate("---|", length(columns) + 2)

    body =
      Enum.map_join(rows, "\n", fn {name, by} ->
        cells =
          Enum.map_join(columns, " | ", fn col ->
            case by[col] do
              nil -> "-"
              s -> "#{ms(s.median)} (#{ms(s.p25)}-#{ms(s.p75)})"
            end
          end)

        nif = by[:nif].median
        fast = if by[:pillow_fast], do: x(nif / by[:pillow_fast].median), else: "-"
        vips = if by[:vips], do: x(by[:vips].median / nif) <> " faster", else: "-"
        "| #{name} | #{cells} | #{fast} | #{vips} |"
      end)

    {_, headline} = hd(rows)
    {_, per_call_row} = List.last(rows)
    headline_ratio = headline[:nif].median / headline[:pillow_fast].median
    small_ratio = per_call_row[:nif].median / per_call_row[:pillow_fast].median
    {1, one, py_one} = List.keyfind(scaling, 1, 0)
    {2, two, py_two} = List.keyfind(scaling, 2, 0)
    per_flight = memory |> Enum.map(&elem(&1, 1)) |> Enum.max()

    scaling_rows =
      Enum.map_join(scaling, "\n", fn {n, nif, py} ->
        "| #{n} | #{Float.round(nif, 1)} | #{x(nif / one)} | #{Float.round(py, 1)} | #{x(py / py_one)} |"
      end)

    """
    Machine: #{machine()}

    Median ms of the runs in one interleaved session, with the interquartile range in
    brackets; `nif` is `Mirage.thumbnail/4` end to end (bytes in, bytes out),
    `mirage_py` the same Python core without the NIF, `pillow_fast` raw Pillow doing
    the same fast path (header, draft, reduce, resample, encode), `pillow_naive` a
    full decode then `ImageOps.fit`, `vips` pyvips `thumbnail_buffer` (what Vix/Image
    users get), `convert` ImageMagick as a whole process.

    #{header}
    #{body}

    | call | us per call (median of batches of 100) |
    |---|---|
    | NIF call floor (`Mirage.NIF.live_handles/0`, enters Python) | #{Float.round(calls.floor, 2)} |
    | bare dirty-scheduler trip (`:erts_debug.dirty_io/2`, no Mirage), alternating with the floor | #{Float.round(calls.hop, 2)} |
    | `Mirage.info/1` on a 32x32 PNG, through the NIF | #{Float.round(calls.nif_info, 2)} |
    | `mirage.image.info` in Python (no NIF) | #{Float.round(calls.py_info, 2)} |
    | `PIL.Image.open` + size in Python | #{Float.round(calls.pillow_open, 2)} |

    | concurrent callers (12 MP -> 256x256) | NIF images/s | scaling | Pillow threads images/s | scaling |
    |---|---|---|---|---|
    #{scaling_rows}

    | in-flight 12 MP thumbnails | peak RSS growth per thumbnail (MB) |
    |---|---|
    #{Enum.map_join(memory, "\n", fn {n, mb} -> "| #{n} | #{mb} |" end)}

    | target | measured | verdict |
    |---|---|---|
    | 12 MP: NIF <= 1.10x raw Pillow fast path | #{x(headline_ratio)} | #{verdict(headline_ratio <= 1.10)} |
    | 640x427: NIF <= 1.10x raw Pillow fast path | #{x(small_ratio)} | #{verdict(small_ratio <= 1.10)} |
    | NIF call floor <= 10 us | #{Float.round(calls.floor, 2)} us (bare dirty trip #{Float.round(calls.hop, 2)} us) | #{verdict(calls.floor <= 10)} |
    | 2 concurrent callers >= 1.75x one | #{x(two / one)} | #{verdict(two / one >= 1.75)} |
    | <= 5 MB RSS growth per in-flight 12 MP thumbnail | #{per_flight} MB | #{verdict(per_flight <= 5)} |

    Python threads for comparison: 2 threads = #{x(py_two / py_one)} one thread.
    """
  end

  defp machine do
    cpu =
      case File.read("/proc/cpuinfo") do
        {:ok, text} ->
          Regex.run(~r/model name\s*:\s*(.+)/, text, capture: :all_but_first)
          |> List.wrap()
          |> List.first()

        _ ->
          nil
      end

    malloc = System.get_env("GLIBC_TUNABLES") || "glibc defaults (as set by ERTS)"

    "#{System.schedulers_online()} schedulers, #{cpu || "unknown CPU"}, OTP #{System.otp_release()}, " <>
      "Elixir #{System.version()}; malloc: #{malloc}"
  end
end

Bench.main()
