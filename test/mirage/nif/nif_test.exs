defmodule Mirage.NIFTest do
  # Not async: these tests count the images Python holds, process-wide.
  use ExUnit.Case, async: false

  @sample File.read!("samples/rocket.jpg")

  # The reaper releases handles on its own thread, shortly after GC.
  defp wait_for_live_handles(expected, tries \\ 200) do
    :erlang.garbage_collect()

    case Mirage.NIF.live_handles() do
      ^expected ->
        :ok

      other when tries == 0 ->
        flunk("live handles stayed at #{other}, expected #{expected}")

      _other ->
        Process.sleep(10)
        wait_for_live_handles(expected, tries - 1)
    end
  end

  defp in_process(fun) do
    task = Task.async(fun)
    Task.await(task, 30_000)
  end

  test "the atom tables made at load are the reasons and formats Elixir documents" do
    assert Mirage.NIF.atom_tables() == %{
             reasons: Mirage.Error.core_reasons(),
             formats: Mirage.Options.formats()
           }
  end

  test "a call past its timeout stops at the next safe point and answers :timeout" do
    {:ok, large, _} = Mirage.thumbnail(@sample, 3000, 2000, format: :png, fit: :exact)

    # Decoding and resampling 6 MP takes far longer than 1 ms: the check after them
    # finds the deadline passed (the NIF's deadline is cooperative).
    assert Mirage.thumbnail(large, 8, 8, timeout: 1) == {:error, :timeout}
    assert {:ok, _, _} = Mirage.thumbnail(large, 8, 8, timeout: :infinity)
  end

  test "the live Python handle count returns to zero after the structs are collected" do
    wait_for_live_handles(0)

    held =
      in_process(fn ->
        images = for _ <- 1..50, do: Mirage.from_bytes!(@sample)
        resized = for image <- Enum.take(images, 10), do: elem(Mirage.resize!(image, 16, 16), 1)
        Mirage.NIF.live_handles() - length(images) - length(resized)
      end)

    assert held == 0
    wait_for_live_handles(0)
  end

  describe "release/1" do
    test "frees the held image before garbage collection; later use raises" do
      wait_for_live_handles(0)
      image = Mirage.from_bytes!(@sample)
      {:ok, _bytes, thumb} = Mirage.resize(image, 32, 32)
      assert Mirage.NIF.live_handles() == 2

      assert Mirage.release(image) == :ok
      # Both structs are still referenced here: only release/1 can have freed one.
      wait_for_live_handles(1)
      assert Mirage.release(image) == :ok
      assert Mirage.NIF.live_handles() == 1

      for use <- [
            fn -> Mirage.resize(image, 16, 16) end,
            fn -> Mirage.crop(image, 0, 0, 8, 8) end,
            fn -> Mirage.to_bytes(image) end,
            fn -> Mirage.thumbnail(image, 16, 16) end,
            fn -> Mirage.rotate!(image, 90) end
          ] do
        assert_raise ArgumentError, ~r/released by Mirage.release/, use
      end

      # The struct's fields stay readable, and images made before are independent.
      assert {image.width, image.height} == {640, 427}
      assert {:ok, _, %Mirage{width: 16}} = Mirage.resize(thumb, 16, 16)
      assert Mirage.release(thumb) == :ok
      wait_for_live_handles(0)
    end

    test "refuses anything but an image" do
      assert_raise ArgumentError, fn -> Mirage.release(@sample) end
      assert_raise ArgumentError, fn -> Mirage.release(%{resource: make_ref()}) end
    end

    test "racing calls from other processes get a result or ArgumentError, never a crash" do
      image = Mirage.from_bytes!(@sample)

      outcomes =
        1..40
        |> Task.async_stream(
          fn i ->
            if i == 20, do: Mirage.release(image)

            try do
              {:ok, _, %Mirage{width: 100}} = Mirage.resize(image, 100, 80)
              :resized
            rescue
              ArgumentError -> :released
            end
          end,
          max_concurrency: 8,
          ordered: true
        )
        |> Enum.map(fn {:ok, outcome} -> outcome end)

      assert Enum.all?(outcomes, &(&1 in [:resized, :released]))
      # Process 20 released before its own call, so that call (and later ones) saw it.
      assert Enum.at(outcomes, 19) == :released
      assert List.last(outcomes) == :released
    end
  end

  test "100 processes resizing one shared image at once get identical results" do
    image = Mirage.from_bytes!(@sample)

    results =
      1..100
      |> Task.async_stream(fn _ -> Mirage.resize(image, 200, 150) end,
        max_concurrency: 100,
        timeout: 60_000
      )
      |> Enum.map(fn {:ok, {:ok, bytes, resized}} -> {bytes, resized.width, resized.height} end)

    assert length(results) == 100
    assert results |> Enum.uniq() |> length() == 1
    assert {_bytes, 200, 150} = hd(results)
  end

  test "errors from many processes at once are still the right atoms" do
    bad = binary_part(@sample, 0, 30_000)

    results =
      1..40
      |> Task.async_stream(fn i ->
        if rem(i, 2) == 0, do: Mirage.from_bytes("junk #{i}"), else: Mirage.from_bytes(bad)
      end)
      |> Enum.map(fn {:ok, result} -> result end)

    assert Enum.count(results, &(&1 == {:error, :unsupported_image_format})) == 20
    assert Enum.count(results, &match?({:ok, %Mirage{}}, &1)) == 20
  end

  test "a large source is read in place: sub-binaries work, the caller's bytes stay intact" do
    # Over 128 KiB, the NIF lends Python the binary for the call instead of copying it.
    bmp = Mirage.Test.BMP.encode(320, 240, fn x, y -> {rem(x, 256), rem(y, 256), 90} end)
    assert byte_size(bmp) > 128 * 1024
    framed = :rand.bytes(1001) <> bmp <> :rand.bytes(999)
    source = binary_part(framed, 1001, byte_size(bmp))
    original = :binary.copy(framed)

    {:ok, from_slice, thumb} = Mirage.thumbnail(source, 80, 60, format: :png)
    assert {:ok, ^from_slice, _} = Mirage.thumbnail(bmp, 80, 60, format: :png)
    assert framed == original

    # The returned image holds its own pixels, not the borrowed binary.
    :erlang.garbage_collect()
    assert {:ok, _, %Mirage{width: 40, height: 30}} = Mirage.resize(thumb, 40, 30)

    assert Mirage.thumbnail(binary_part(source, 0, 131_100), 80, 60) ==
             {:error, :truncated_image}
  end

  describe "module lifecycle" do
    test "purge and reload (code reloading): images made before stay valid" do
      before = Mirage.from_bytes!(@sample)

      # What IEx's r/1 and code reloaders do: the new instance's `upgrade` takes the
      # resource type over, then the old instance is purged and unloaded.
      :code.purge(Mirage.NIF)
      assert {:module, Mirage.NIF} = :code.load_file(Mirage.NIF)
      :code.purge(Mirage.NIF)

      after_reload = Mirage.from_bytes!(@sample)

      for image <- [before, after_reload] do
        assert {:ok, _bytes, %Mirage{width: 10, height: 10}} = Mirage.resize(image, 10, 10)
      end
    end

    test "full unload, then a fresh load: the NIF works again, old images are released" do
      wait_for_live_handles(0)
      old = in_process(fn -> Mirage.from_bytes!(@sample) end)

      # Delete and purge: nothing of the module is left, `unload` runs. Python and
      # the reaper stay (never finalized), so the fresh `load` reuses them.
      :code.purge(Mirage.NIF)
      assert :code.delete(Mirage.NIF)
      :code.purge(Mirage.NIF)
      refute :erlang.function_exported(Mirage.NIF, :resize, 4)
      assert {:module, Mirage.NIF} = :code.load_file(Mirage.NIF)

      assert {:ok, _bytes, %Mirage{width: 64, height: 48}} =
               Mirage.resize(Mirage.from_bytes!(@sample), 64, 48)

      # OTP takes a resource type over only from a loaded instance, so an image from
      # the unloaded one is no longer recognised: a clean ArgumentError, no crash...
      assert_raise ArgumentError, fn -> Mirage.resize(old, 10, 10) end
      # ...and its destructor (kept mapped by -z nodelete) still releases it.
      assert Mirage.NIF.live_handles() >= 1
      _ = old
      wait_for_live_handles(0)
    end
  end

  @tag :shared
  test "a call whose caller died stops at its next safe point instead of running on" do
    image = Mirage.from_bytes!(Mirage.Test.Shared.read!("bench-images/photo_12mp.jpg"))
    # A slow call with safe points: a full decode, then (only if it runs on) a PNG
    # encode at level 9 taking seconds. Its caller is killed during the decode.
    attempt = fn ->
      before = Mirage.NIF.abandoned_calls()
      parent = self()

      caller =
        spawn(fn ->
          send(parent, :calling)
          Mirage.to_bytes(image, format: :png, compress_level: 9, timeout: :infinity)
        end)

      assert_receive :calling
      Process.sleep(20)
      Process.exit(caller, :kill)

      Enum.any?(1..300, fn _ ->
        Process.sleep(20)
        Mirage.NIF.abandoned_calls() > before
      end)
    end

    # Another attempt only where the kill landed before a dirty scheduler took the call.
    assert Enum.any?(1..3, fn _ -> attempt.() end),
           "no call was abandoned: the NIF ran on after its caller died"
  end
end
