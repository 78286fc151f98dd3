defmodule Mirage.Port.WorkerTest do
  # The real worker program (python -m mirage.port) behind a pool: faults, deadlines,
  # held images, and the same bytes as the NIF.
  use ExUnit.Case, async: true
  import ExUnit.CaptureLog

  alias Mirage.Port.Pool
  alias Mirage.Test.Wait

  @rocket File.read!("samples/rocket.jpg")
  @photo Mirage.Test.Shared.path("bench-images/photo_12mp.jpg")

  defp start_pool(opts \\ []) do
    name = :"port_#{System.unique_integer([:positive])}"
    start_supervised!({Pool, [name: name, workers: 1] ++ opts}, id: name)
    name
  end

  defp args(extra \\ %{}), do: Map.merge(elem(Mirage.Options.validate!([], [], "test"), 1), extra)

  defp os_pid(pool), do: hd(Mirage.Port.workers(pool)).os_pid

  defp gone?(os_pid), do: not File.exists?("/proc/#{os_pid}")

  test "formats, info and a thumbnail through the real program" do
    pool = start_pool()
    assert {:ok, nil, nil, %{read: read}} = Mirage.Port.call(pool, :formats, nil, args())
    assert :jpg in read

    assert {:ok, nil, nil, %{format: :jpg, width: 640, height: 427}} =
             Mirage.Port.call(pool, :info, @rocket, args())

    assert {:ok, bytes, {handle, :jpg, 64, 64}, nil} =
             Mirage.Port.call(pool, :thumbnail, @rocket, args(%{width: 64, height: 64}))

    assert {:mirage_port, ^pool, 0, _, _} = handle
    assert {:ok, %{width: 64, height: 64}} = Mirage.info(bytes)
  end

  test "bad data gives the core's reason" do
    pool = start_pool()

    assert Mirage.Port.call(pool, :info, "not an image", args()) ==
             {:error, :unsupported_image_format}

    assert Mirage.Port.call(pool, :from_bytes, binary_part(@rocket, 0, 100), args()) in [
             {:error, :truncated_image},
             {:error, :decode_failed}
           ]
  end

  test "a chain of operations on a held image gives the NIF's bytes" do
    pool = start_pool()

    chain = fn call ->
      {:ok, nil, {image, _, _, _}, nil} = call.(:from_bytes, @rocket, args())

      {:ok, nil, {part, _, 300, 200}, nil} =
        call.(:crop, image, args(%{x: 10, y: 20, width: 300, height: 200}))

      {:ok, nil, {turned, _, 200, 300}, nil} = call.(:rotate, part, args(%{degrees: 90}))
      {:ok, nil, {flipped, _, _, _}, nil} = call.(:flip, turned, args(%{direction: :vertical}))
      {:ok, png, nil, nil} = call.(:to_bytes, flipped, args(%{format: :png}))
      {:ok, jpg, nil, nil} = call.(:to_bytes, flipped, args(%{quality: 90}))
      {:ok, thumb, _, nil} = call.(:resize, image, args(%{width: 100, height: 80}))
      {png, jpg, thumb}
    end

    port = chain.(fn op, source, a -> Mirage.Port.call(pool, op, source, a) end)
    nif = chain.(&Mirage.Transport.NIF.call/3)
    assert port == nif
  end

  defp rss_mb(os_pid), do: Mirage.Test.RSS.mb(os_pid)

  test "a worker's memory comes back after an image near the budget whose owner exits" do
    pool = start_pool()
    {:ok, nil, nil, _} = Mirage.Port.call(pool, :info, @rocket, args())
    os_pid = os_pid(pool)
    before = rss_mb(os_pid)

    # 7000 x 7000 = 49 MP (about 150 MB of pixels), under the default budget, decoded
    # and held (a crop keeps its pixels) by a process that exits without releasing
    # them: the worker drops them as that owner's.
    Task.async(fn ->
      thumb = %{width: 7000, height: 7000, fit: :exact, format: :jpg, timeout: 120_000}
      {:ok, jpg, _, nil} = Mirage.Port.call(pool, :thumbnail, @rocket, args(thumb))

      {:ok, nil, {image, :jpg, 7000, 7000}, nil} =
        Mirage.Port.call(pool, :from_bytes, jpg, args())

      box = %{x: 0, y: 0, width: 7000, height: 7000, timeout: 120_000}
      {:ok, nil, {_crop, _, 7000, 7000}, nil} = Mirage.Port.call(pool, :crop, image, args(box))
    end)
    |> Task.await(120_000)

    Wait.until(fn -> Mirage.Port.live_handles(pool) == 0 end)
    grown = rss_mb(os_pid) - before
    assert grown < 100, "the worker's resident memory grew by #{grown} MB and stayed"
  end

  test "release/1 and the owner's exit free the images a worker holds" do
    pool = start_pool()
    assert Mirage.Port.live_handles(pool) == 0
    {:ok, nil, {image, _, _, _}, nil} = Mirage.Port.call(pool, :from_bytes, @rocket, args())
    assert Mirage.Port.live_handles(pool) == 1
    assert Mirage.Port.release(image) == :ok
    assert Mirage.Port.release(image) == :ok
    assert Mirage.Port.call(pool, :to_bytes, image, args()) == :released
    assert Mirage.Port.live_handles(pool) == 0

    # Another process makes images and exits without releasing them.
    task =
      Task.async(fn ->
        for _ <- 1..3, do: {:ok, _, _, _} = Mirage.Port.call(pool, :from_bytes, @rocket, args())
      end)

    Task.await(task)
    Wait.until(fn -> Mirage.Port.live_handles(pool) == 0 end)
  end

  @tag :shared
  test "a worker killed with SIGKILL mid-request: :worker_crashed, then a fresh worker" do
    pool = start_pool()

    {:ok, nil, {image, _, _, _}, nil} =
      Mirage.Port.call(pool, :from_bytes, File.read!(@photo), args())

    victim = os_pid(pool)

    # A slow encode of 12 MP (decode, then PNG at the highest compression level).
    slow = %{format: :png, compress_level: 9, timeout: 120_000}
    task = Task.async(fn -> Mirage.Port.call(pool, :to_bytes, image, args(slow)) end)
    Wait.until(fn -> hd(Mirage.Port.workers(pool)).busy end)

    log =
      capture_log(fn ->
        System.cmd("kill", ["-KILL", Integer.to_string(victim)])
        assert Task.await(task, 120_000) == {:error, :worker_crashed}
      end)

    assert log =~ "exited with status"
    # Its images died with it; a fresh worker serves the next call.
    assert Mirage.Port.call(pool, :to_bytes, image, args()) == {:error, :worker_crashed}
    assert {:ok, nil, nil, %{width: 640}} = Mirage.Port.call(pool, :info, @rocket, args())
    assert [%{restarts: 1, served: 2}] = Mirage.Port.workers(pool)
    assert os_pid(pool) != victim and gone?(victim)
  end

  @tag :shared
  test "a 12 MP thumbnail past a 1 ms deadline: :timeout, the worker killed, then a normal call" do
    pool = start_pool()
    photo = File.read!(@photo)
    old = os_pid(pool)

    capture_log(fn ->
      assert Mirage.Port.call(
               pool,
               :thumbnail,
               photo,
               args(%{width: 256, height: 256, timeout: 1})
             ) ==
               {:error, :timeout}
    end)

    Wait.until(fn -> gone?(old) end)

    assert {:ok, _bytes, {_, :jpg, 256, 256}, nil} =
             Mirage.Port.call(pool, :thumbnail, photo, args(%{width: 256, height: 256}))

    assert [%{restarts: 1, served: 1, busy: false}] = Mirage.Port.workers(pool)
  end

  test "a worker holds at most max_images images; past it, :overloaded" do
    pool = start_pool(max_images: 2)
    {:ok, nil, {first, _, _, _}, nil} = Mirage.Port.call(pool, :from_bytes, @rocket, args())
    {:ok, nil, {_, _, _, _}, nil} = Mirage.Port.call(pool, :from_bytes, @rocket, args())
    assert Mirage.Port.call(pool, :from_bytes, @rocket, args()) == {:error, :overloaded}
    # Operations that hold nothing still run; releasing one makes room again.
    assert {:ok, nil, nil, %{width: 640}} = Mirage.Port.call(pool, :info, @rocket, args())
    Mirage.Port.release(first)

    assert {:ok, nil, {_, :jpg, 640, 427}, nil} =
             Mirage.Port.call(pool, :from_bytes, @rocket, args())
  end

  test "a worker holds at most max_held bytes of images; past it, :overloaded" do
    # A held crop of the whole sample is 640 x 427 pixels at 4 bytes: room for one.
    pool = start_pool(max_held: 1_500_000)
    {:ok, nil, {source, _, _, _}, nil} = Mirage.Port.call(pool, :from_bytes, @rocket, args())
    crop = args(%{x: 0, y: 0, width: 640, height: 427})
    assert {:ok, nil, {first, _, 640, 427}, nil} = Mirage.Port.call(pool, :crop, source, crop)
    assert Mirage.Port.call(pool, :crop, source, crop) == {:error, :overloaded}
    Mirage.Port.release(first)
    assert {:ok, nil, {_, _, 640, 427}, nil} = Mirage.Port.call(pool, :crop, source, crop)
  end

  # A PNG declaring width x height RGB pixels while carrying almost none.
  defp png_header(width, height) do
    chunk = fn kind, data ->
      <<byte_size(data)::32, kind::binary, data::binary, :erlang.crc32(kind <> data)::32>>
    end

    "\x89PNG\r\n\x1a\n" <>
      chunk.("IHDR", <<width::32, height::32, 8, 2, 0, 0, 0>>) <>
      chunk.("IDAT", :zlib.compress(<<0::8000>>)) <> chunk.("IEND", "")
  end

  test "an allocation past max_memory is :too_many_pixels and the worker carries on" do
    # 1 GiB of address space; a 20000 x 20000 RGB canvas (1.2 GB) cannot fit, and
    # the pixel budget is raised so that only the cap stops it.
    pool = start_pool(max_memory: 1024 * 1024 * 1024)
    [%{os_pid: os_pid}] = Mirage.Port.workers(pool)
    bomb = png_header(20_000, 20_000)
    big = args(%{max_pixels: 1_000_000_000, width: 10, height: 10})

    capture_log(fn ->
      assert Mirage.Port.call(pool, :thumbnail, bomb, big) == {:error, :too_many_pixels}
    end)

    assert {:ok, nil, nil, %{width: 640}} = Mirage.Port.call(pool, :info, @rocket, args())
    assert [%{os_pid: ^os_pid, restarts: 0}] = Mirage.Port.workers(pool)
  end

  test "200 concurrent callers on a pool of 2 all get their answers" do
    pool = start_pool(workers: 2)

    results =
      1..200
      |> Enum.map(fn _ -> Task.async(fn -> Mirage.Port.call(pool, :info, @rocket, args()) end) end)
      |> Enum.map(&Task.await(&1, 60_000))

    assert Enum.all?(results, &match?({:ok, nil, nil, %{width: 640, height: 427}}, &1))
    assert Enum.sum(Enum.map(Mirage.Port.workers(pool), & &1.served)) == 200
  end
end
