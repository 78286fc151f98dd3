defmodule Mirage.Conformance.CostTest do
  # Bounded cost and deadlines through the public API, once per transport (the Python
  # core's own tests are tests/test_cost.py).
  use Mirage.ConformanceCase

  conformance async: true do
    @sample File.read!("samples/rocket.jpg")

    # Found by the atheris run: a 10x10 GIF whose second frame declares a 60637x2815
    # extent (tests/test_cost.py, FUZZ_EXTENT_GIF). Pillow would enlarge the canvas to
    # 170 MP and decode it; the frame is charged at that canvas before any decoding.
    @extent_gif Base.decode64!(
                  "R0lGODlhCgAKAPAAAAAAAAAAACH5BABkAAAAIf8LTkVUU0NBUEUyLjADAQAAACwAAAAACgAKAAACCISPqcvt" <>
                    "D2MrACH5BABkAAAALAAAAADd7P8KAIBVVVUAAAACCAAACgAKAIBVVVUAAAACCISPqcvtD2MrADs="
                )

    test "a GIF frame with a huge extent is refused as too_many_pixels; frame 0 works" do
      assert {:ok, %{width: 10, height: 10, frames: 2}} = Mirage.info(@extent_gif)
      assert {:ok, image} = Mirage.from_bytes(@extent_gif)
      assert Mirage.thumbnail(@extent_gif, 10, 10) == {:error, :too_many_pixels}
      assert Mirage.thumbnail(image, 10, 10) == {:error, :too_many_pixels}
      assert Mirage.to_bytes(image, format: :png) == {:error, :too_many_pixels}

      assert {:ok, _bytes, %Mirage{width: 10}} =
               Mirage.thumbnail(@extent_gif, 10, 10, frames: :first)
    end

    # A 1 x `height` uncompressed 8-bit grey TIFF of one-row strips (one pixel each).
    defp one_row_strips(height) do
      entries = [
        {256, 4, 1, 1},
        {257, 4, 1, height},
        {258, 3, 1, 8},
        {259, 3, 1, 1},
        {262, 3, 1, 1},
        {273, 4, height, :offsets},
        {277, 3, 1, 1},
        {278, 4, 1, 1},
        {279, 4, height, :counts}
      ]

      offsets_at = 8 + 2 + 12 * length(entries) + 4
      counts_at = offsets_at + 4 * height
      pixels_at = counts_at + 4 * height

      ifd =
        for {tag, type, count, value} <- entries, into: <<length(entries)::little-16>> do
          value = %{offsets: offsets_at, counts: counts_at}[value] || value
          <<tag::little-16, type::little-16, count::little-32, value::little-32>>
        end

      offsets = for i <- 0..(height - 1), into: <<>>, do: <<pixels_at + i::little-32>>

      <<"II*\0", 8::little-32>> <>
        ifd <>
        <<0::32>> <>
        offsets <>
        :binary.copy(<<1::little-32>>, height) <>
        :binary.copy(<<128>>, height)
    end

    test "a TIFF of tiny strips is too_complex, each strip charged as 16x16 pixels" do
      # 2000 pixels, but 2000 strips for Pillow to handle one by one.
      tiff = one_row_strips(2000)
      assert {:ok, %{width: 1, height: 2000}} = Mirage.info(tiff, max_pixels: 2000 * 256)
      assert Mirage.info(tiff, max_pixels: 2000 * 256 - 1) == {:error, :too_complex}
      assert Mirage.thumbnail(tiff, 1, 8, max_pixels: 100_000) == {:error, :too_complex}
      assert {:ok, _bytes, %Mirage{height: 8}} = Mirage.thumbnail(tiff, 1, 8)
    end

    test "the crafted TIFFs of surplus strips or tiles, 4100 tags or 8200 rationals are too_complex" do
      for name <-
            ~w(tiff_surplus_strips.tif tiff_surplus_tiles.tif tiff_entry_flood.tif tiff_exif_rationals.tif) do
        tiff = File.read!("test/fixtures/crafted/" <> name)
        assert Mirage.info(tiff) == {:error, :too_complex}, name
        assert Mirage.thumbnail(tiff, 8, 8) == {:error, :too_complex}, name
      end
    end

    test "an RLE BMP's pixels are charged eight times: too_complex past an eighth of the budget" do
      for name <- ~w(bmp_rle8_3000x3000.bmp bmp_rle4_3000x3000.bmp) do
        bmp = File.read!("test/fixtures/crafted/" <> name)
        assert Mirage.info(bmp) == {:error, :too_complex}, name
        assert Mirage.thumbnail(bmp, 8, 8) == {:error, :too_complex}, name
        assert {:ok, %{width: 3000}} = Mirage.info(bmp, max_pixels: 3000 * 3000 * 8), name
      end
    end

    # A PNG whose eXIf chunk holds orientation 6 and ExposureTime as `n` rationals.
    defp png_with_exif(n) do
      {png, _image} = Mirage.thumbnail!(@sample, 8, 8, format: :png)

      exif =
        <<"II*\0", 8::little-32, 2::little-16>> <>
          <<0x0112::little-16, 3::little-16, 1::little-32, 6::little-32>> <>
          <<0x829A::little-16, 5::little-16, n::little-32, 38::little-32, 0::32>> <>
          :binary.copy(<<1::little-32, 1::little-32>>, n)

      chunk = <<byte_size(exif)::32, "eXIf", exif::binary, :erlang.crc32("eXIf" <> exif)::32>>
      <<head::binary-33, rest::binary>> = png
      head <> chunk <> rest
    end

    test "strip: false keeps EXIF unless writing it back would read over 524 288 values" do
      # 8176 rationals (each counted as 64 values) are kept, 8193 are not.
      assert {:ok, kept} = Mirage.to_bytes(Mirage.from_bytes!(png_with_exif(8176)), strip: false)
      assert byte_size(kept) > 8176 * 8

      assert {:ok, out} = Mirage.to_bytes(Mirage.from_bytes!(png_with_exif(8193)), strip: false)
      assert byte_size(out) < 2000
      assert {:ok, %{orientation: 6}} = Mirage.info(out)
    end

    test "a GIF comment of 70 000 one-byte sub-blocks is too_complex" do
      {gif, _image} = Mirage.thumbnail!(@sample, 4, 4, format: :gif)
      <<head::binary-13, _::binary>> = gif
      <<_::binary-10, flags, _::binary>> = head
      palette = if flags >= 0x80, do: 3 * Bitwise.bsl(2, Bitwise.band(flags, 7)), else: 0
      <<before::binary-size(13 + palette), after_::binary>> = gif
      comment = fn blocks -> <<0x21, 0xFE>> <> :binary.copy(<<1, ?c>>, blocks) <> <<0>> end

      assert {:ok, %{width: 4}} = Mirage.info(before <> comment.(1000) <> after_)
      assert Mirage.info(before <> comment.(70_000) <> after_) == {:error, :too_complex}
    end

    # @sample with `n` EXIF entries (tags `first` and up) whose data lies past the end
    # of the file: Pillow warns once per entry while reading the orientation.
    defp with_bad_exif(first, n) do
      <<0xFF, 0xD8, rest::binary>> = @sample

      entries =
        for tag <- first..(first + n - 1),
            into: <<>>,
            do: <<tag::little-16, 2::little-16, 1_000_000::little-32, 0x7FFF0000::little-32>>

      exif = "Exif\0\0" <> "II*\0" <> <<8::little-32, n::little-16>> <> entries <> <<0::32>>
      <<0xFF, 0xD8, 0xFF, 0xE1, byte_size(exif) + 2::16>> <> exif <> rest
    end

    # Waits for a logged line containing `text` (a node prefixes its lines with its name),
    # keeping the other lines in the mailbox.
    defp await_line(text, seen \\ []) do
      receive do
        {:logged, line} ->
          if String.contains?(line, text),
            do: Enum.each(Enum.reverse(seen), &send(self(), &1)),
            else: await_line(text, [{:logged, line} | seen])
      after
        10_000 -> flunk("no line #{inspect(text)} logged")
      end
    end

    test "a call's warning flood logs its first 20 lines and a count of the rest",
         %{transport: transport} do
      # Each transport's copy of this test runs at once: tags of its own tell its lines.
      first =
        30_000 + 2_000 * Enum.find_index(Mirage.ConformanceCase.transports(), &(&1 == transport))

      bytes = with_bad_exif(first, 1234)
      relay = Mirage.Test.LogRelay.attach(self())

      try do
        assert {:ok, %{format: :jpg}} = Mirage.info(bytes)
        # The count comes after the lines it follows (a node's may arrive after the reply).
        await_line("1214 more lines of output from this call suppressed")
      after
        Mirage.Test.LogRelay.detach(relay)
      end

      ours =
        for {:logged, line} <- Process.info(self(), :messages) |> elem(1),
            [_, tag] <- [Regex.run(~r/Skipping tag (\d+)$/m, line)],
            String.to_integer(tag) in first..(first + 1233),
            do: tag

      assert length(ours) == 20
    end

    test "a rotation whose expanded canvas is over the budget is refused" do
      # 640x427 turned 45 degrees needs about 755x755 (570 000 pixels).
      image = Mirage.from_bytes!(@sample)
      assert Mirage.rotate(image, 45, max_pixels: 400_000) == {:error, :too_many_pixels}
      assert {:ok, %Mirage{width: 427}} = Mirage.rotate(image, 90, max_pixels: 400_000)
      assert {:ok, %Mirage{width: w}} = Mirage.rotate(image, 45, max_pixels: 600_000)
      assert w * w > 400_000
    end

    test "every function takes timeout: as a number of milliseconds or :infinity" do
      image = Mirage.from_bytes!(@sample)

      calls = [
        {"from_bytes", &Mirage.from_bytes(@sample, &1)},
        {"info", &Mirage.info(@sample, &1)},
        {"thumbnail", &Mirage.thumbnail(@sample, 8, 8, &1)},
        {"resize", &Mirage.resize(image, 8, 8, &1)},
        {"crop", &Mirage.crop(image, 0, 0, 8, 8, &1)},
        {"rotate", &Mirage.rotate(image, 90, &1)},
        {"flip", &Mirage.flip(image, :horizontal, &1)},
        {"auto_orient", &Mirage.auto_orient(image, &1)},
        {"to_bytes", &Mirage.to_bytes(image, &1)},
        {"formats", &Mirage.formats(&1)}
      ]

      for {name, call} <- calls, timeout <- [60_000, :infinity] do
        answer = call.(timeout: timeout)

        assert match?({:ok, _}, answer) or match?({:ok, _, _}, answer) or is_map(answer),
               "#{name}(timeout: #{inspect(timeout)}) gave #{inspect(answer)}"
      end
    end
  end
end
