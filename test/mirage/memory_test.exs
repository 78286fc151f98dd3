defmodule Mirage.MemoryTest do
  # Not async: it measures the whole VM's resident memory, so nothing else may run.
  use ExUnit.Case, async: false

  # make memcheck excludes it: ASan's allocator keeps freed memory in quarantine.
  @moduletag :rss

  @sample File.read!("samples/rocket.jpg")

  defp rss_mb, do: Mirage.Test.RSS.mb()

  defp wait_for_live_handles(expected, tries \\ 200) do
    :erlang.garbage_collect()

    cond do
      Mirage.NIF.live_handles() == expected -> :ok
      tries == 0 -> flunk("held images did not go back to #{expected}")
      true -> Process.sleep(10) && wait_for_live_handles(expected, tries - 1)
    end
  end

  test "memory comes back after an image near the pixel budget" do
    if File.exists?("/proc/self/status") do
      {:ok, _} = Mirage.info(@sample)
      live = Mirage.NIF.live_handles()
      before = rss_mb()

      # 7000 x 7000 = 49 MP, under the default budget: about 200 MB of pixels.
      size =
        Task.async(fn ->
          {:ok, jpg, image} = Mirage.thumbnail(@sample, 7000, 7000, fit: :exact, format: :jpg)
          {:ok, small, _} = Mirage.thumbnail(jpg, 64, 64)
          :ok = Mirage.release(image)
          {byte_size(jpg), byte_size(small)}
        end)
        |> Task.await(60_000)

      assert {_, _} = size
      wait_for_live_handles(live)
      grown = rss_mb() - before
      assert grown < 100, "resident memory grew by #{grown} MB and stayed"
    end
  end
end
