# Mirage benchmarks: `make bench` (or `MIX_ENV=prod mix run bench/run.exs`).
#
# Every number is a ratio against a baseline measured in the same run: the Python
# baselines (bench/baselines.py) run in one helper process whose requests are
# interleaved, in shuffled order, with the NIF's. Absolute times vary by machine.
# Prints a markdown table and writes it to bench/results/latest.md; the targets'
# figures also go to bench/results/run-*.etf for bench/summary.exs, which gives
# their medians over repeated runs (`make bench RUNS=3`).

Code.require_file("report.exs", __DIR__)

defmodule Bench do
  import Bench.Report, only: [stats: 1, verdict: 3, figure: 2]

  @shared Path.expand("../../shared", __DIR__)
  @python System.get_env("MIRAGE_PYTHON") || Path.expand("../.venv/bin/python", __DIR__)

  # Columns measured in Elixir; a node transport is one more entry here.
  @transports [
    nif: &Mirage.thumbnail/4,
    port: &Bench.port_thumbnail/4
  ]
  # Columns measured by bench/baselines.py.
  @baselines [:mirage_py, :pillow_fast, :pillow_naive, :vips, :convert]

  # {name, file, rounds, baselines measured for this case only}. pyvips'
  # thumbnail_buffer with a crop writes one frame of an animation; `vips_frames`
  # keeps every frame, as Mirage does, and is slow enough to run on the GIF only.
  @cases [
    {"12 MP JPEG", "bench-images/photo_12mp.jpg", 25, []},
    {"2 MP JPEG", "bench-images/photo_2mp.jpg", 25, []},
    {"1000x1000 RGBA PNG", "bench-images/photo_rgba_1000.png", 15, []},
    {"2000x1500 WebP", "bench-images/photo_2000x1500.webp", 15, []},
    {"480x320 GIF, 30 frames", "bench-images/anim_480x320_30f.gif", 5, [:vips_frames]},
    {"640x427 JPEG", "bench-images/real_rocket_640x427.jpg", 150, []}
  ]

  # Issue 12: libvips time / NIF time per case, at least this (median of the runs).
  @vips_goals [
    {"12 MP JPEG", 1.3},
    {"2 MP JPEG", 1.3},
    {"1000x1000 RGBA PNG", 1.0},
    {"2000x1500 WebP", 1.0},
    {"480x320 GIF, 30 frames", 1.0}
  ]

  def main do
    unless File.dir?(@shared), do: raise("bench needs #{@shared} (the benchmark images)")
    py = start_python()
    available = Enum.filter(@baselines, &(ask(py, "have #{&1}") == "yes"))
    missing = @baselines -- available
    columns = Keyword.keys(@transports) ++ available

    if missing != [], do: IO.puts("Baselines not installed (skipped): #{inspect(missing)}")

    rows =
      for {name, file, rounds, extras} <- @cases do
        extras = Enum.filter(extras, &(ask(py, "have #{&1}") == "yes"))
        {name, measure_case(py, file, rounds, available ++ extras)}
      end

    calls = per_call(py)
    wakes = wakes()
    scaling = throughput(py)
    port = port()
    memory = memory()

    targets = targets(rows, calls, scaling, port, memory)
    report = render(columns, rows, calls, wakes, scaling, port, memory, targets)
    IO.puts("\n" <> report)
    File.mkdir_p!(Path.expand("results", __DIR__))
    File.write!(Path.expand("results/latest.md", __DIR__), report)
    run = "results/run-#{System.os_time(:millisecond)}.etf"
    File.write!(Path.expand(run, __DIR__), :erlang.term_to_binary(targets))
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

    {:ok, out, _} = Mirage.thumbnail(bytes, 256, 256, quality: quality)

    sizes =
      Map.new(baselines, fn name ->
        {name, ask_number(py, "size #{name} #{path} 256 256 #{quality}")}
      end)
      |> Map.put(:nif, byte_size(out))

    samples =
      for _ <- 1..rounds do
        runners |> Enum.shuffle() |> Map.new(fn {name, run} -> {name, run.()} end)
      end

    # Ratios are taken within each round, then the median over rounds: the
    # machine's speed drifts over seconds, and a round's samples are neighbours.
    times = for {name, _} <- runners, into: %{}, do: {name, stats(Enum.map(samples, & &1[name]))}

    ratios =
      for {name, _} <- runners, into: %{} do
        {{:ratio, name}, stats(Enum.map(samples, &(&1[:nif] / &1[name])))}
      end

    times |> Map.merge(ratios) |> Map.put(:bytes, sizes)
  end

  defp time_elixir(fun, bytes, quality) do
    {us, {:ok, _bytes, image}} = :timer.tc(fn -> fun.(bytes, 256, 256, quality: quality) end)
    # Outside the timing: the port's workers hold results until released.
    Mirage.release(image)
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
    # on whether the threads involved are awake, and changes within a run. An ERTS
    # function that runs on a dirty I/O scheduler and does nothing else takes turns
    # with the floor, batch by batch; Mirage's own part is the median difference
    # between neighbouring batches.
    [floors, hops] =
      batches(count, [
        fn -> Mirage.NIF.live_handles() end,
        fn -> :erts_debug.dirty_io(:scheduler, :type) end
      ])

    own = Enum.zip_with(floors, hops, &(&1 - &2))

    %{
      nif_info: nif_info,
      py_info: py_info,
      pillow_open: pillow_open,
      floor: stats(floors).median,
      hop: stats(hops).median,
      own: stats(own).median,
      faults: faults()
    }
  end

  # The median over batches of 100 calls: precise below a microsecond, and a
  # scheduler hiccup or garbage collection spoils one batch, not the answer.
  # Several functions take turns, batch by batch, so they see the same conditions.
  defp loops(count, funs), do: count |> batches(funs) |> Enum.map(&stats(&1).median)

  # Each function's batch times (us per call), in the order they were taken.
  defp batches(count, funs) do
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
    |> Enum.map(fn {_, times} -> times end)
  end

  # Minor page faults of the whole VM per thumbnail, in steady state: what ERTS's
  # malloc settings cost when a buffer is mapped afresh on every call.
  @fault_cases [
    {"12 MP JPEG", "bench-images/photo_12mp.jpg", 20},
    {"640x427 JPEG", "bench-images/real_rocket_640x427.jpg", 200}
  ]
  defp faults do
    for {name, file, count} <- @fault_cases do
      bytes = File.read!(Path.join(@shared, file))
      thumb = fn -> {:ok, _, _} = Mirage.thumbnail(bytes, 256, 256, quality: 85) end
      Enum.each(1..10, fn _ -> thumb.() end)
      before = minor_faults()
      Enum.each(1..count, fn _ -> thumb.() end)
      {name, (minor_faults() - before) / count}
    end
  end

  defp minor_faults do
    # /proc/self/stat: the 10th field, counted after the parenthesised command name.
    [_, after_name] = "/proc/self/stat" |> File.read!() |> String.split(") ", parts: 2)
    after_name |> String.split(" ") |> Enum.at(7) |> String.to_integer()
  end

  # -- the host's thread wake-up latency ---------------------------------------------

  # bench/wake.c, built here: how long a thread that slept for a while takes to run
  # once signalled. A dirty NIF call wakes two threads (a dirty scheduler for the
  # job, a normal scheduler after it); a Python thread calling Pillow wakes none.
  @wake_gaps_us [10, 100, 1000, 5000]
  defp wakes do
    source = Path.expand("wake.c", __DIR__)
    binary = Path.join(Mix.Project.build_path(), "bench_wake")
    flags = ~w(-O2 -Wall -Wextra -Werror -pthread)
    {_, 0} = System.cmd("cc", flags ++ [source, "-o", binary], stderr_to_stdout: true)
    {out, 0} = System.cmd(binary, Enum.map(@wake_gaps_us, &to_string/1))

    for ["wake", gap, median, p90] <-
          Enum.map(String.split(out, "\n", trim: true), &String.split/1) do
      {String.to_integer(gap), String.to_float(median), String.to_float(p90)}
    end
  end

  # -- throughput ------------------------------------------------------------------

  # Short windows for every level of both the NIF and Pillow threads, in a new
  # order each round: the machine's speed drifts over seconds, so each round's
  # scaling compares windows measured next to each other, and the report gives the
  # median over rounds. Scaling is about concurrent callers, so each NIF call keeps
  # to one thread (`threads: 1`, as each Pillow call does); one caller with the
  # default (`threads: :auto`, the JPEG decode on every core) is measured beside.
  @rounds 6
  @window 1.5
  defp throughput(py) do
    path = Path.join(@shared, "bench-images/photo_12mp.jpg")
    bytes = File.read!(path)
    levels = Enum.uniq([1, 2, System.schedulers_online()])
    thumb = fn -> {:ok, _, _} = Mirage.thumbnail(bytes, 256, 256, quality: 85, threads: 1) end
    auto = fn -> {:ok, _, _} = Mirage.thumbnail(bytes, 256, 256, quality: 85) end
    windows = [{:auto, 1} | for(n <- levels, side <- [:nif, :py], do: {side, n})]

    runs =
      for _ <- 1..@rounds do
        Map.new(Enum.shuffle(windows), fn
          {:nif, n} ->
            {{:nif, n}, rate(n, thumb)}

          {:auto, 1} ->
            {{:auto, 1}, rate(1, auto)}

          {:py, n} ->
            {{:py, n}, ask_number(py, "threads pillow_fast #{path} 256 256 #{n} #{@window}")}
        end)
      end

    for n <- levels do
      median = fn side -> stats(Enum.map(runs, & &1[{side, n}])).median end
      scaling = fn side -> stats(Enum.map(runs, &(&1[{side, n}] / &1[{side, 1}]))) end

      %{
        n: n,
        auto: stats(Enum.map(runs, & &1[{:auto, 1}])).median,
        nif: median.(:nif),
        py: median.(:py),
        nif_scaling: scaling.(:nif),
        py_scaling: scaling.(:py)
      }
    end
  end

  defp rate(n, fun) do
    deadline = System.monotonic_time(:millisecond) + round(@window * 1000)
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

  # -- the port transport ----------------------------------------------------------

  @doc false
  def port_thumbnail(bytes, width, height, opts),
    do: Mirage.thumbnail(bytes, width, height, [transport: :port] ++ opts)

  # A pool of its own with two workers, whatever the machine: one caller against two
  # callers, windows interleaved as for the NIF; and the round trip of a call that
  # does no image work (formats/1), next to the same call through the NIF.
  defp port do
    Mirage.Port.ensure_started()
    {:ok, pool} = Mirage.Port.Pool.start_link(name: Bench.PortPool, workers: 2)
    bytes = File.read!(Path.join(@shared, "bench-images/photo_12mp.jpg"))
    # One thread a call, as for the NIF's scaling: the two workers are the parallelism.
    {nil, args} =
      Mirage.Options.validate!([quality: 85, threads: 1], [:quality, :threads], "thumbnail/4")

    args = Map.merge(args, %{width: 256, height: 256})

    thumb = fn ->
      {:ok, _, {handle, _, _, _}, nil} = Mirage.Port.call(pool, :thumbnail, bytes, args)
      Mirage.Port.release(handle)
    end

    runs =
      for _ <- 1..@rounds do
        Map.new(Enum.shuffle([1, 2]), fn n -> {n, rate(n, thumb)} end)
      end

    [port_trip, nif_trip] =
      loops(2_000, [
        fn -> %{} = Mirage.formats(transport: :port) end,
        fn -> %{} = Mirage.formats(transport: :nif) end
      ])

    GenServer.stop(pool)

    %{
      one: stats(Enum.map(runs, & &1[1])).median,
      two: stats(Enum.map(runs, & &1[2])).median,
      scaling: stats(Enum.map(runs, &(&1[2] / &1[1]))),
      trip: port_trip,
      nif_trip: nif_trip
    }
  end

  # -- memory ------------------------------------------------------------------------

  # Each level in a fresh VM, so memory freed (but kept by malloc) in one run cannot
  # hide what the next one needs.
  defp memory do
    for {name, file, _, _} <- @cases do
      {name,
       for in_flight <- [1, 2] do
         {out, 0} =
           System.cmd("mix", ["run", "bench/memory.exs", to_string(in_flight), file],
             env: [{"MIX_ENV", "prod"}],
             cd: Path.expand("..", __DIR__)
           )

         [mb] = Regex.run(~r/growth_per_in_flight_mb=([\d.]+)/, out, capture: :all_but_first)

         {in_flight, String.to_float(mb)}
       end}
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

  defp ms(us), do: :erlang.float_to_binary(us / 1000, decimals: 1)
  defp bytes(nil), do: "-"
  defp bytes(n), do: Integer.to_string(round(n))

  defp x(ratio), do: :erlang.float_to_binary(ratio, decimals: 2) <> "x"

  defp spread_x(s),
    do: "#{x(s.median)} (#{:erlang.float_to_binary(s.p25, decimals: 2)}-#{x(s.p75)})"

  # {target, measured, limit, :max | :min, unit, {what, figure} measured alongside}
  defp targets(rows, calls, scaling, port, memory) do
    {_, headline} = hd(rows)
    {_, per_call_row} = List.last(rows)
    two = Enum.find(scaling, &(&1.n == 2))
    {_, twelve} = List.keyfind(memory, "12 MP JPEG", 0)
    per_flight = twelve |> Enum.map(&elem(&1, 1)) |> Enum.max()

    [
      {"12 MP: NIF <= 1.10x raw Pillow fast path", headline[{:ratio, :pillow_fast}].median, 1.10,
       :max, "x", nil},
      {"640x427: NIF <= 1.10x raw Pillow fast path", per_call_row[{:ratio, :pillow_fast}].median,
       1.10, :max, "x", nil},
      {"NIF call floor <= 10 us", calls.floor, 10, :max, " us", {"bare dirty trip", calls.hop}},
      {"2 concurrent callers >= 1.75x one (threads: 1 a call)", two.nif_scaling.median, 1.75,
       :min, "x", {"Pillow threads", two.py_scaling.median}},
      {"<= 5 MB RSS growth per in-flight 12 MP thumbnail", per_flight, 5, :max, " MB", nil},
      # ratio is nif / port per round; the median of its inverse is its median's inverse.
      {"12 MP: port <= 1.15x NIF", 1 / headline[{:ratio, :port}].median, 1.15, :max, "x", nil},
      {"640x427: port <= 1.30x NIF", 1 / per_call_row[{:ratio, :port}].median, 1.30, :max, "x",
       nil},
      {"port: 2 callers on a pool of 2 >= 1.8x one", port.scaling.median, 1.8, :min, "x", nil}
    ] ++ vips_targets(rows)
  end

  # The issue's goals against libvips, each with the output size alongside (NIF
  # bytes / vips bytes: a faster encoder writing bigger files is no win).
  defp vips_targets(rows) do
    by_name = Map.new(rows)

    goals =
      for {name, goal} <- @vips_goals, by = by_name[name], by[:vips] do
        {"#{name}: vips / NIF >= #{goal}x", 1 / by[{:ratio, :vips}].median, goal, :min, "x",
         {"output bytes NIF / vips", by.bytes.nif / by.bytes.vips}}
      end

    frames =
      for {name, by} <- rows, by[:vips_frames] do
        {"#{name}: vips keeping every frame / NIF >= 1.0x", 1 / by[{:ratio, :vips_frames}].median,
         1.0, :min, "x", {"output bytes NIF / vips", by.bytes.nif / by.bytes.vips_frames}}
      end

    goals ++ frames
  end

  defp render(columns, rows, calls, wakes, scaling, port, memory, targets) do
    header =
      "| case (-> 256x256 fill, q85) | " <>
        Enum.map_join(columns, " | ", &"#{&1} ms") <>
        " | nif / pillow_fast | vips / nif | nif bytes | vips bytes |\n" <>
        "|---|" <> String.duplicate("---|", length(columns) + 4)

    body =
      Enum.map_join(rows, "\n", fn {name, by} ->
        cells =
          Enum.map_join(columns, " | ", fn col ->
            case by[col] do
              nil -> "-"
              s -> "#{ms(s.median)} (#{ms(s.p25)}-#{ms(s.p75)})"
            end
          end)

        fast = if by[:pillow_fast], do: x(by[{:ratio, :pillow_fast}].median), else: "-"
        vips = if by[:vips], do: x(1 / by[{:ratio, :vips}].median), else: "-"

        "| #{name} | #{cells} | #{fast} | #{vips} | #{bytes(by.bytes[:nif])} | #{bytes(by.bytes[:vips])} |"
      end)

    extra_rows =
      for {name, by} <- rows,
          extra <- Map.keys(by.bytes) -- [:nif | columns],
          s = by[extra],
          s != nil do
        "| #{name} | `#{extra}` | #{ms(s.median)} (#{ms(s.p25)}-#{ms(s.p75)}) | " <>
          "#{bytes(by.bytes[extra])} | #{bytes(by.bytes.nif)} | #{x(1 / by[{:ratio, extra}].median)} |"
      end

    memory_rows =
      Enum.map_join(memory, "\n", fn {name, levels} ->
        "| #{name} | " <> Enum.map_join(levels, " | ", fn {_, mb} -> "#{mb}" end) <> " |"
      end)

    scaling_rows =
      Enum.map_join(scaling, "\n", fn s ->
        "| #{s.n} | #{Float.round(s.nif, 1)} | #{spread_x(s.nif_scaling)} | " <>
          "#{Float.round(s.py, 1)} | #{spread_x(s.py_scaling)} |"
      end)

    fault_rows =
      Enum.map_join(calls.faults, "\n", fn {name, per} ->
        "| #{name} | #{Float.round(per, 1)} |"
      end)

    """
    Machine: #{machine()}

    Median ms of the runs in one interleaved session, with the interquartile range in
    brackets; `nif` is `Mirage.thumbnail/4` end to end (bytes in, bytes out), `port`
    the same with `transport: :port` (its default pool),
    `mirage_py` the same Python core without the NIF, `pillow_fast` raw Pillow doing
    Mirage's fast path before issue 12's tuning (header, 2x draft, reduce, resample,
    encode with Pillow's defaults), `pillow_naive` a full decode then `ImageOps.fit`,
    `vips` pyvips `thumbnail_buffer` (what Vix/Image users get; for an animation it
    writes a single frame), `vips_frames` pyvips keeping every frame, `convert`
    ImageMagick as a whole process. The ratio columns are the median over rounds of
    each round's own ratio (every runner once per round, in a new order each time);
    bytes are one thumbnail's output size.

    #{header}
    #{body}

    | case | baseline measured for this case only | ms | its output bytes | nif bytes | baseline / nif |
    |---|---|---|---|---|---|
    #{Enum.join(extra_rows, "\n")}

    | call | us per call (median of batches of 100) |
    |---|---|
    | NIF call floor (`Mirage.NIF.live_handles/0`, enters Python) | #{Float.round(calls.floor, 2)} |
    | bare dirty-scheduler trip (`:erts_debug.dirty_io/2`, no Mirage), alternating with the floor | #{Float.round(calls.hop, 2)} |
    | Mirage's own part of the floor (median of floor batch - neighbouring trip batch) | #{Float.round(calls.own, 2)} |
    | `Mirage.info/1` on a 32x32 PNG, through the NIF | #{Float.round(calls.nif_info, 2)} |
    | `mirage.image.info` in Python (no NIF) | #{Float.round(calls.py_info, 2)} |
    | `PIL.Image.open` + size in Python | #{Float.round(calls.pillow_open, 2)} |

    | host thread wake-up (`bench/wake.c`, pthread condition variable) | median us | p90 us |
    |---|---|---|
    #{Enum.map_join(wakes, "\n", fn {gap, median, p90} -> "| after #{gap} us asleep | #{median} | #{p90} |" end)}

    | concurrent callers (12 MP -> 256x256, #{@rounds} rounds of #{@window} s windows), NIF with `threads: 1` | NIF images/s | scaling (IQR) | Pillow threads images/s | scaling (IQR) |
    |---|---|---|---|---|
    #{scaling_rows}

    One caller with the default `threads: :auto`: #{Float.round(hd(scaling).auto, 1)} images/s.

    | port transport | figure |
    |---|---|
    | round trip of `Mirage.formats/1` (no image work), us per call | #{Float.round(port.trip, 1)} (NIF: #{Float.round(port.nif_trip, 1)}) |
    | 12 MP -> 256x256 (`threads: 1`) on a pool of 2, one caller, images/s | #{Float.round(port.one, 1)} |
    | the same, two callers, images/s | #{Float.round(port.two, 1)} (scaling #{spread_x(port.scaling)}) |

    | steady state, NIF (-> 256x256) | minor page faults of the VM per thumbnail |
    |---|---|
    #{fault_rows}

    | case (fresh VM per cell) | peak RSS growth per thumbnail, 1 in flight (MB) | 2 in flight (MB) |
    |---|---|---|
    #{memory_rows}

    | target | measured | verdict |
    |---|---|---|
    #{Enum.map_join(targets, "\n", &target_row/1)}
    """
  end

  defp target_row({label, value, limit, kind, unit, alongside}) do
    also =
      case alongside do
        {what, figure} -> " (#{what} #{figure(figure, unit)})"
        nil -> ""
      end

    "| #{label} | #{figure(value, unit)}#{also} | #{verdict(value, limit, kind)} |"
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
