# Peak RSS growth per in-flight thumbnail of one bench image; run by bench/run.exs in
# a fresh VM per case and level:
# `MIX_ENV=prod mix run bench/memory.exs IN_FLIGHT [FILE]` (FILE under ../shared,
# default the 12 MP JPEG). Then what stays resident after one image near the pixel
# budget (a 7000x7000 result, 49 MP) has been made and released:
# `retained_after_near_budget_mb`.
{in_flight, file} =
  case System.argv() do
    [n] -> {String.to_integer(n), "bench-images/photo_12mp.jpg"}
    [n, file] -> {String.to_integer(n), file}
  end

shared = Path.expand("../../shared", __DIR__)
bytes = File.read!(Path.join(shared, file))
small = File.read!(Path.join(shared, "bench-images/real_rocket_640x427.jpg"))

rss_kb = fn ->
  [kb] =
    Regex.run(~r/VmRSS:\s+(\d+) kB/, File.read!("/proc/self/status"), capture: :all_but_first)

  String.to_integer(kb)
end

# Warm up on a small JPEG: Python, Pillow and the codecs are loaded, no big buffers.
{:ok, _, _} = Mirage.thumbnail(small, 64, 64)
:erlang.garbage_collect()
Process.sleep(200)
base = rss_kb.()

sampler =
  spawn(fn ->
    loop = fn loop, peak ->
      receive do
        {:stop, from} -> send(from, {:peak, peak})
      after
        1 -> loop.(loop, max(peak, rss_kb.()))
      end
    end

    loop.(loop, base)
  end)

1..in_flight
|> Enum.map(fn _ -> Task.async(fn -> Mirage.thumbnail(bytes, 256, 256, quality: 85) end) end)
|> Enum.each(fn task -> {:ok, _, _} = Task.await(task, 60_000) end)

send(sampler, {:stop, self()})
peak = receive do: ({:peak, kb} -> kb)
growth = (peak - base) / 1024 / in_flight
IO.puts("base_kb=#{base} peak_kb=#{peak}")
IO.puts("growth_per_in_flight_mb=#{:erlang.float_to_binary(growth, decimals: 1)}")

# Memory that comes back: one result near the default budget, released, then RSS.
:erlang.garbage_collect()
before = rss_kb.()

Task.async(fn ->
  {:ok, _, image} = Mirage.thumbnail(small, 7000, 7000, fit: :exact, format: :jpg)
  :ok = Mirage.release(image)
end)
|> Task.await(60_000)

wait = fn wait, tries ->
  :erlang.garbage_collect()

  if Mirage.NIF.live_handles() > 0 and tries > 0,
    do: Process.sleep(10) && wait.(wait, tries - 1),
    else: :ok
end

wait.(wait, 200)
retained = (rss_kb.() - before) / 1024
IO.puts("retained_after_near_budget_mb=#{:erlang.float_to_binary(retained, decimals: 1)}")
