# The node transport's figures: `MIX_ENV=prod mix run bench/node.exs` (short; it
# makes the VM distributed itself, starting `epmd -daemon` if none answers).
#
#   * 12 MP JPEG -> 256x256 fill through :node, as a ratio to :nif (target <= 1.25)
#   * throughput of two local workers with two callers, as a ratio to one worker with
#     one caller (target >= 1.7; needs two idle cores)
#   * the round trip of a trivial call (formats/1) through :node, in microseconds
#
# Every figure is measured in this run against its baseline, rounds interleaved.

defmodule Bench.Node do
  @shared Path.expand("../../shared", __DIR__)

  def main do
    unless File.dir?(@shared), do: raise("bench needs #{@shared} (the benchmark images)")
    started_epmd = distribute!()
    bytes = File.read!(Path.join(@shared, "bench-images/photo_12mp.jpg"))

    {:ok, _} = Mirage.Node.Pool.start_link(name: :bench_one, spawn: 1, prefix: "bench_one_")
    {:ok, _} = Mirage.Node.Pool.start_link(name: :bench_two, spawn: 2, prefix: "bench_two_")
    Enum.each([{:bench_one, 1}, {:bench_two, 2}], &connected!/1)

    thumb = fn pool -> fn -> thumbnail(pool, bytes) end end
    nif = fn -> {:ok, _, _} = Mirage.thumbnail(bytes, 256, 256, transport: :nif) end

    # Warm up, then interleave :nif and :node rounds.
    Enum.each([nif, thumb.(:bench_one)], & &1.())

    {nif_us, node_us} =
      1..12
      |> Enum.map(fn _ -> {elapsed(nif), elapsed(thumb.(:bench_one))} end)
      |> Enum.unzip()

    fill_ratio = median(node_us) / median(nif_us)

    # Throughput: calls done in a fixed window, one caller on one worker against two
    # callers on two workers, alternating windows.
    # One thread a call (`threads: 1`): the workers are the parallelism measured.
    windows =
      for _ <- 1..3 do
        {throughput(:bench_one, bytes, 1), throughput(:bench_two, bytes, 2)}
      end

    {one, two} = Enum.unzip(windows)
    scaling = median(two) / median(one)

    trivial = round_trip(:bench_one, 2_000)

    IO.puts("""

    | node transport | figure | target |
    |---|---|---|
    | 12 MP JPEG -> 256x256 fill, :node / :nif | #{fmt(fill_ratio)}x | <= 1.25x |
    | throughput, 2 workers x 2 callers / 1 x 1 (`threads: 1` a call) | #{fmt(scaling)}x | >= 1.7x |
    | round trip of formats/1 through :node | #{round(trivial)} µs | |
    """)

    # Leave nothing running: the workers, then EPMD if this run started it.
    Enum.each([:bench_one, :bench_two], &GenServer.stop/1)
    Node.stop()
    if started_epmd, do: System.cmd("epmd", ["-kill"], stderr_to_stdout: true)
  end

  defp thumbnail(pool, bytes, extra \\ %{}) do
    args = Map.merge(args(), Map.merge(%{width: 256, height: 256}, extra))
    {:ok, _, _, _} = Mirage.Node.call(pool, :thumbnail, bytes, args)
  end

  defp args, do: [] |> Mirage.Options.validate!([], "bench") |> elem(1)

  defp throughput(pool, bytes, callers) do
    deadline = System.monotonic_time(:millisecond) + 3_000

    1..callers
    |> Enum.map(fn _ -> Task.async(fn -> count_until(pool, bytes, deadline, 0) end) end)
    |> Task.await_many(:infinity)
    |> Enum.sum()
  end

  defp count_until(pool, bytes, deadline, done) do
    if System.monotonic_time(:millisecond) >= deadline do
      done
    else
      thumbnail(pool, bytes, %{threads: 1})
      count_until(pool, bytes, deadline, done + 1)
    end
  end

  defp round_trip(pool, count) do
    args = args()
    call = fn -> {:ok, nil, nil, _} = Mirage.Node.call(pool, :formats, nil, args) end
    call.()
    {us, _} = :timer.tc(fn -> for _ <- 1..count, do: call.() end)
    us / count
  end

  defp elapsed(fun), do: fun |> :timer.tc() |> elem(0)

  defp median(list), do: list |> Enum.sort() |> Enum.at(div(length(list), 2))

  defp fmt(ratio), do: :erlang.float_to_binary(ratio / 1, decimals: 2)

  # Whether this run started EPMD.
  defp distribute! do
    if Node.alive?() do
      false
    else
      {_, status} = System.cmd("epmd", ["-names"], stderr_to_stdout: true)
      if status != 0, do: {_, 0} = System.cmd("epmd", ["-daemon"])
      {:ok, _} = Node.start(:"mirage_bench_#{System.pid()}@127.0.0.1", :longnames)
      status != 0
    end
  end

  defp connected!({pool, count}) do
    Enum.find(1..600, fn _ ->
      Process.sleep(50)
      Enum.count(Mirage.Node.workers(pool), & &1.connected) == count
    end) || raise "#{pool}: workers did not connect"
  end
end

Bench.Node.main()
