defmodule Mirage.Conformance.WrongBytesTest do
  # Issue 11, "Wrong bytes", through the public API: struct and output agree, colours
  # and sizes are exactly the ones asked for, the same input gives the same bytes.
  use Mirage.ConformanceCase

  conformance async: true do
    alias Mirage.Test.Shared

    @sample File.read!("samples/rocket.jpg")

    @tag :shared
    test "an animated GIF whose later frame extends the canvas: struct and output agree" do
      bytes = Shared.read!("corpus/gif/pillow/test_extents.gif")
      assert {:ok, image} = Mirage.from_bytes(bytes)
      assert {image.width, image.height} == {100, 100}
      assert {:ok, %{frames: 2}} = Mirage.info(bytes)

      for format <- [:png, :gif, :webp] do
        assert {:ok, out} = Mirage.to_bytes(image, format: format), inspect(format)
        assert {:ok, %{width: 100, height: 100}} = Mirage.info(out), inspect(format)
      end

      assert {:ok, out, thumb} = Mirage.thumbnail(bytes, 50, 50, format: :webp)
      assert {thumb.width, thumb.height} == {50, 50}
      assert {:ok, %{width: 50, height: 50}} = Mirage.info(out)
    end

    test "rotating RGBA with a partly transparent background paints exactly that colour" do
      # An opaque RGB image: a four-value background gives the rotated image alpha.
      {:ok, png, _thumb} = Mirage.thumbnail(@sample, 60, 40, format: :png)
      image = Mirage.from_bytes!(png)
      assert {:ok, turned} = Mirage.rotate(image, 45, background: {10, 20, 30, 40})
      assert {:ok, png} = Mirage.to_bytes(turned, format: :png)
      assert corner_pixel(png) == {10, 20, 30, 40}
    end

    test "a size on a half pixel rounds up: 512x257 contained in 256x256 is 256x129" do
      {:ok, wide, _} = Mirage.thumbnail(@sample, 512, 257, fit: :exact, format: :png)
      assert {:ok, _bytes, thumb} = Mirage.thumbnail(wide, 256, 256, fit: :contain)
      assert {thumb.width, thumb.height} == {256, 129}
    end

    @tag :shared
    test "a LAB TIFF gives the same PNG bytes every time" do
      bytes = Shared.read!("corpus/tiff/pillow/lab.tif")
      first = Mirage.to_bytes!(Mirage.from_bytes!(bytes), format: :png)
      # An ICC profile's creation date has one-second resolution.
      Process.sleep(1100)
      assert Mirage.to_bytes!(Mirage.from_bytes!(bytes), format: :png) == first
    end

    # The top-left pixel of an 8-bit RGBA PNG, read with :zlib (filter type 0 or 1 on the
    # first row leaves its first pixel as stored).
    defp corner_pixel(png) do
      <<0x89, "PNG\r\n", 0x1A, "\n", rest::binary>> = png
      {ihdr, idat} = chunks(rest, nil, [])
      <<_w::32, _h::32, 8, 6, _::binary>> = ihdr
      <<_filter, r, g, b, a, _::binary>> = :zlib.uncompress(IO.iodata_to_binary(idat))
      {r, g, b, a}
    end

    defp chunks(
           <<len::32, type::binary-4, data::binary-size(len), _crc::32, rest::binary>>,
           ihdr,
           idat
         ) do
      case type do
        "IHDR" -> chunks(rest, data, idat)
        "IDAT" -> chunks(rest, ihdr, [idat, data])
        "IEND" -> {ihdr, idat}
        _ -> chunks(rest, ihdr, idat)
      end
    end
  end
end
