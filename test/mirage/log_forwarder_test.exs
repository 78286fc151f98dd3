defmodule Mirage.LogForwarderTest do
  use ExUnit.Case, async: false
  import ExUnit.CaptureLog

  alias Mirage.Test.Shared

  defp flush_forwarder do
    # The NIF sends lines to the forwarder; a call returns once earlier ones are logged.
    :sys.get_state(Mirage.LogForwarder)
    Logger.flush()
  end

  @tag :shared
  test "Python warnings reach Logger, not the VM's stdout" do
    # Pillow warns about this file's two acTL chunks while reading the header.
    bytes = Shared.read!("corpus/png/pillow/apng__chunk_multi_actl.png")

    log =
      capture_log(fn ->
        assert {:ok, %Mirage{format: :png}} = Mirage.from_bytes(bytes)
        flush_forwarder()
      end)

    assert log =~ "[warning]"
    assert log =~ "Invalid APNG"
  end

  # @sample with an EXIF block of `n` entries whose data lies past the end of the file:
  # Pillow warns once per entry while reading the orientation.
  defp with_bad_exif(n) do
    <<0xFF, 0xD8, rest::binary>> = File.read!("samples/rocket.jpg")

    entries =
      for tag <- 1000..(1000 + n - 1),
          into: <<>>,
          do: <<tag::little-16, 2::little-16, 1_000_000::little-32, 0x7FFF0000::little-32>>

    exif = "Exif\0\0" <> "II*\0" <> <<8::little-32, n::little-16>> <> entries <> <<0::32>>
    <<0xFF, 0xD8, 0xFF, 0xE1, byte_size(exif) + 2::16>> <> exif <> rest
  end

  test "one call logs its first lines and a count of the rest, not thousands" do
    bytes = with_bad_exif(2000)

    log =
      capture_log(fn ->
        assert {:ok, %{format: :jpg}} = Mirage.info(bytes)
        flush_forwarder()
      end)

    lines = String.split(log, "\n") |> Enum.filter(&(&1 =~ "[warning]"))
    assert length(lines) == 21
    assert List.last(lines) =~ "more lines of output from this call suppressed"
  end

  test "lines wait in the forwarder's mailbox up to a bound; the rest are counted" do
    bytes = with_bad_exif(40)
    :ok = :sys.suspend(Mirage.LogForwarder)

    log =
      capture_log(fn ->
        try do
          # 100 calls x 21 lines = 2100 lines against a bound of 1000.
          for _ <- 1..100, do: {:ok, _} = Mirage.info(bytes)

          {:message_queue_len, queued} =
            Process.info(Process.whereis(Mirage.LogForwarder), :message_queue_len)

          assert queued <= 1000
        after
          :sys.resume(Mirage.LogForwarder)
        end

        flush_forwarder()
      end)

    assert log =~ ~r/\d+ lines of Python output dropped/
  end

  @tag :shared
  test "libtiff's messages reach Logger instead of the VM's stderr" do
    # Pillow's libtiff lacks WebP: it reports that through its error handler.
    bytes = Shared.read!("corpus/tiff/pillow/hopper_webp.tif")

    log =
      capture_log(fn ->
        Mirage.thumbnail(bytes, 8, 8)
        flush_forwarder()
      end)

    assert log =~ "WEBP compression support is not configured"
  end

  test "ignores messages it does not understand" do
    send(Mirage.LogForwarder, {:mirage_log, :bogus, "x"})
    send(Mirage.LogForwarder, :unexpected)
    flush_forwarder()
    assert Process.alive?(Process.whereis(Mirage.LogForwarder))
  end
end
