defmodule Mirage.Conformance.ImagingTest do
  # The imaging API through every transport: info, thumbnail options, crop/rotate/flip,
  # orientation, encoding options, animation, allowlists and option validation.
  use Mirage.ConformanceCase

  conformance async: true do
    alias Mirage.Test.{BMP, Shared}

    @sample File.read!("samples/rocket.jpg")

    # 300x100: left third red, middle green, right third blue.
    defp thirds do
      BMP.encode(300, 100, fn
        x, _ when x < 100 -> {255, 0, 0}
        x, _ when x < 200 -> {0, 255, 0}
        _, _ -> {0, 0, 255}
      end)
    end

    defp pixels(bytes), do: BMP.decode(bytes)
    defp at({_w, _h, fun}, x, y), do: fun.(x, y)

    defp dominant({r, g, b}) do
      cond do
        r > 200 and g < 60 and b < 60 -> :red
        g > 200 and r < 60 and b < 60 -> :green
        b > 200 and r < 60 and g < 60 -> :blue
        true -> :mixed
      end
    end

    describe "info/2" do
      test "reads the header only" do
        assert {:ok, info} = Mirage.info(@sample)

        assert info == %{
                 format: :jpg,
                 width: 640,
                 height: 427,
                 frames: 1,
                 orientation: 1,
                 has_alpha: false,
                 mode: "RGB"
               }
      end

      @tag :shared
      test "reports frames, alpha and orientation" do
        assert %{frames: 30, format: :gif} =
                 Mirage.info!(Shared.read!("bench-images/anim_480x320_30f.gif"))

        assert %{has_alpha: true, mode: "RGBA"} =
                 Mirage.info!(Shared.read!("bench-images/photo_rgba_1000.png"))

        for n <- 1..8 do
          assert %{orientation: ^n} =
                   Mirage.info!(Shared.read!("corpus/exif/recurser/Landscape_#{n}.jpg"))
        end
      end

      @tag :shared
      test "refuses huge images without decoding them" do
        bytes = Shared.read!("corpus/synthetic/png_13000x13000_rgb_zeros.png")
        assert Mirage.info(bytes) == {:error, :too_many_pixels}
        assert {:ok, %{width: 13_000}} = Mirage.info(bytes, max_pixels: 200_000_000)
      end

      test "answers errors for bad data and raises for bad arguments" do
        assert Mirage.info("nope") == {:error, :unsupported_image_format}
        assert_raise Mirage.Error, fn -> Mirage.info!("") end
        assert_raise ArgumentError, fn -> Mirage.info(:not_binary) end
      end
    end

    describe "thumbnail/4 threads" do
      @tag :shared
      test "one thread or the cores: the same bytes, from a JPEG decoded at 1/8" do
        # 4000x3000 to 256x256 decodes at 1/8, where the decoder splits the scan
        # between threads when it may.
        bytes = Shared.read!("bench-images/photo_12mp.jpg")
        {:ok, auto, _} = Mirage.thumbnail(bytes, 256, 256)
        {:ok, one, _} = Mirage.thumbnail(bytes, 256, 256, threads: 1)
        {:ok, three, _} = Mirage.thumbnail(bytes, 256, 256, threads: 3)
        assert auto == one and one == three

        assert_raise ArgumentError, ~r/option :threads/, fn ->
          Mirage.thumbnail(bytes, 256, 256, threads: 0)
        end

        assert_raise ArgumentError, ~r/option :threads/, fn ->
          Mirage.thumbnail(bytes, 256, 256, threads: :many)
        end
      end
    end

    describe "thumbnail/4 geometry" do
      test "each fit mode gives the documented size" do
        # 640x427 into 200x200.
        for {fit, size} <- [
              fill: {200, 200},
              contain: {200, 133},
              cover: {300, 200},
              exact: {200, 200}
            ] do
          assert {:ok, bytes, thumb} = Mirage.thumbnail(@sample, 200, 200, fit: fit)
          assert {thumb.width, thumb.height} == size, "fit #{fit}"
          assert %{width: w, height: h} = Mirage.info!(bytes)
          assert {w, h} == size
        end
      end

      test "upscale: false never enlarges" do
        assert {:ok, _, %{width: 640, height: 427}} =
                 Mirage.thumbnail(@sample, 2000, 2000, fit: :contain, upscale: false)

        assert {:ok, _, %{width: 640, height: 427}} =
                 Mirage.thumbnail(@sample, 2000, 1000, upscale: false)

        assert {:ok, _, %{width: 1000, height: 1000}} = Mirage.thumbnail(@sample, 1000, 1000)
      end

      test "gravity chooses what fill keeps" do
        for {gravity, colour} <- [west: :red, center: :green, east: :blue, north_west: :red] do
          {:ok, bytes, _} = Mirage.thumbnail(thirds(), 50, 50, gravity: gravity, format: :bmp)
          image = pixels(bytes)
          assert dominant(at(image, 25, 25)) == colour, "gravity #{gravity}"
          assert dominant(at(image, 2, 2)) == colour
          assert dominant(at(image, 47, 47)) == colour
        end

        {:ok, bytes, _} = Mirage.thumbnail(thirds(), 50, 50, gravity: {1.0, 0.5}, format: :bmp)
        assert dominant(at(pixels(bytes), 25, 25)) == :blue
      end

      test "accepts a held image as the source" do
        image = Mirage.from_bytes!(@sample)

        assert {:ok, bytes, %Mirage{width: 64, height: 64, format: :jpg}} =
                 Mirage.thumbnail(image, 64, 64)

        assert Mirage.info!(bytes).width == 64
      end

      test "filters give different, valid results" do
        results =
          for filter <- [:nearest, :bilinear, :bicubic, :lanczos] do
            {:ok, bytes, %{width: 60, height: 40}} =
              Mirage.thumbnail(@sample, 60, 40, filter: filter, format: :png)

            bytes
          end

        assert length(Enum.uniq(results)) == 4
      end

      test "output pixels match a full decode resized on its own (similarity)" do
        # Fast path (JPEG draft + reduce) against a reference: decode everything to
        # BMP first, then resize that. Threshold: mean difference under 4 of 255.
        {:ok, fast, _} = Mirage.thumbnail(@sample, 120, 80, format: :bmp, filter: :lanczos)
        {:ok, full, _} = Mirage.thumbnail(@sample, 640, 427, format: :bmp, filter: :nearest)
        {:ok, reference, _} = Mirage.thumbnail(full, 120, 80, format: :bmp, filter: :lanczos)
        assert BMP.mean_difference(pixels(fast), pixels(reference)) < 4
      end
    end

    describe "orientation" do
      @tag :shared
      test "every EXIF orientation of a JPEG comes out as the same upright image" do
        for set <- ["Landscape", "Portrait"] do
          upright =
            for n <- 0..8 do
              bytes = Shared.read!("corpus/exif/recurser/#{set}_#{n}.jpg")
              {:ok, out, thumb} = Mirage.thumbnail(bytes, 90, 60, fit: :exact, format: :bmp)
              assert {thumb.width, thumb.height} == {90, 60}
              pixels(out)
            end

          [reference | rest] = upright

          for {image, n} <- Enum.with_index(rest, 1) do
            assert BMP.mean_difference(reference, image) < 8, "#{set}_#{n}"
          end
        end
      end

      @tag :shared
      test "one rule for JPEG, WebP and TIFF" do
        for {pattern, range} <- [
              {"corpus/exif/pillow/hopper_orientation_N.jpg", 2..8},
              {"corpus/exif/pillow/hopper_orientation_N.webp", 2..8},
              {"corpus/exif/pillow/g4_orientation_N.tif", 1..8}
            ] do
          images =
            for n <- range do
              bytes = Shared.read!(String.replace(pattern, "N", to_string(n)))
              {:ok, image} = bytes |> Mirage.from_bytes!() |> Mirage.auto_orient()
              {:ok, out} = Mirage.to_bytes(image, format: :bmp)
              pixels(out)
            end

          [reference | rest] = images
          sizes = Enum.map(images, fn {w, h, _} -> {w, h} end)
          assert Enum.uniq(sizes) |> length() == 1, "#{pattern}: #{inspect(sizes)}"

          for image <- rest do
            assert BMP.mean_difference(reference, image) < 12, pattern
          end
        end
      end

      @tag :shared
      test "auto_orient: false keeps the stored pixels; the encoded result still displays upright" do
        bytes = Shared.read!("corpus/exif/recurser/Landscape_6.jpg")
        %{width: w, height: h, orientation: 6} = Mirage.info!(bytes)
        {:ok, raw, thumb} = Mirage.thumbnail(bytes, div(w, 10), div(h, 10), auto_orient: false)
        assert {thumb.width, thumb.height} == {div(w, 10), div(h, 10)}
        assert %{orientation: 6} = Mirage.info!(raw)

        {:ok, upright, _} = Mirage.thumbnail(bytes, div(h, 10), div(w, 10))
        assert %{orientation: 1} = Mirage.info!(upright)
      end
    end

    describe "crop/5, rotate/3, flip/2, auto_orient/1" do
      test "crop takes the region" do
        image = Mirage.from_bytes!(thirds())
        assert {:ok, right} = Mirage.crop(image, 200, 10, 100, 80)
        assert {right.width, right.height, right.byte_size} == {100, 80, nil}
        assert dominant(at(pixels(Mirage.to_bytes!(right, format: :bmp)), 50, 40)) == :blue
      end

      test "crop outside the image is :invalid_dimensions; bad arguments raise" do
        image = Mirage.from_bytes!(@sample)
        assert Mirage.crop(image, 600, 0, 100, 10) == {:error, :invalid_dimensions}

        assert_raise ArgumentError, ~r/x must be a non-negative integer/, fn ->
          Mirage.crop(image, -1, 0, 1, 1)
        end

        assert_raise ArgumentError, ~r/width/, fn -> Mirage.crop(image, 0, 0, 0, 1) end
        assert_raise Mirage.Error, fn -> Mirage.crop!(image, 0, 0, 641, 1) end
      end

      test "rotate turns clockwise; quarter turns are exact" do
        image = Mirage.from_bytes!(thirds())
        {:ok, turned} = Mirage.rotate(image, 90)
        assert {turned.width, turned.height} == {100, 300}
        # Clockwise: the left (red) third ends up on top.
        out = pixels(Mirage.to_bytes!(turned, format: :bmp))
        assert dominant(at(out, 50, 10)) == :red
        assert dominant(at(out, 50, 290)) == :blue

        {:ok, round} = Mirage.rotate(image, 360)
        assert {round.width, round.height} == {300, 100}
        {:ok, tilted} = Mirage.rotate(image, 45, background: {255, 255, 255})
        # (300 + 100) * cos(45 degrees) = 282.8 on both axes.
        assert tilted.width in 282..284 and tilted.height in 282..284
        out = pixels(Mirage.to_bytes!(tilted, format: :bmp))
        assert at(out, 0, 0) == {255, 255, 255}
        assert_raise ArgumentError, fn -> Mirage.rotate(image, "90") end
      end

      test "flip mirrors" do
        image = Mirage.from_bytes!(thirds())
        {:ok, flipped} = Mirage.flip(image, :horizontal)
        out = pixels(Mirage.to_bytes!(flipped, format: :bmp))
        assert dominant(at(out, 10, 50)) == :blue
        assert dominant(at(out, 290, 50)) == :red
        assert {:ok, %{width: 300}} = Mirage.flip(image, :vertical)
        assert_raise ArgumentError, fn -> Mirage.flip(image, :diagonal) end
      end

      @tag :shared
      test "auto_orient makes width and height those of the displayed image" do
        image = Mirage.from_bytes!(Shared.read!("corpus/exif/recurser/Landscape_6.jpg"))
        {:ok, upright} = Mirage.auto_orient(image)
        assert {upright.width, upright.height} == {image.height, image.width}
        assert %{orientation: 1} = Mirage.info!(Mirage.to_bytes!(upright))
      end

      test "operations chain and the result can be encoded" do
        bytes =
          @sample
          |> Mirage.from_bytes!()
          |> Mirage.crop!(0, 0, 320, 200)
          |> Mirage.rotate!(180)
          |> Mirage.flip!(:vertical)
          |> Mirage.to_bytes!(format: :png)

        assert %{format: :png, width: 320, height: 200} = Mirage.info!(bytes)
      end
    end

    describe "to_bytes/2" do
      test "writes every format" do
        image = Mirage.from_bytes!(@sample)

        for {format, magic} <- [
              jpg: <<0xFF, 0xD8, 0xFF>>,
              png: <<0x89, "PNG">>,
              gif: "GIF8",
              webp: "RIFF",
              bmp: "BM",
              tiff: "II*"
            ] do
          assert {:ok, <<^magic::binary-size(byte_size(magic)), _::binary>> = bytes} =
                   Mirage.to_bytes(image, format: format)

          assert %{format: ^format, width: 640, height: 427} = Mirage.info!(bytes)
        end
      end

      test "quality, progressive, compress_level and lossless take effect" do
        image = Mirage.from_bytes!(@sample)

        assert byte_size(Mirage.to_bytes!(image, quality: 10)) <
                 byte_size(Mirage.to_bytes!(image, quality: 95))

        # SOF2 marks a progressive JPEG.
        assert :binary.match(Mirage.to_bytes!(image, progressive: true), <<0xFF, 0xC2>>) !=
                 :nomatch

        assert :binary.match(Mirage.to_bytes!(image), <<0xFF, 0xC2>>) == :nomatch

        assert byte_size(Mirage.to_bytes!(image, format: :png, compress_level: 9)) <
                 byte_size(Mirage.to_bytes!(image, format: :png, compress_level: 0))

        assert :binary.match(Mirage.to_bytes!(image, format: :webp, lossless: true), "VP8L") !=
                 :nomatch
      end

      @tag :shared
      test "strip drops EXIF unless told to keep it" do
        image = Mirage.from_bytes!(Shared.read!("bench-images/photo_12mp.jpg"))
        {:ok, small} = Mirage.thumbnail(image, 100, 75) |> then(fn {:ok, _, s} -> {:ok, s} end)
        assert :binary.match(Mirage.to_bytes!(small), "Exif\0\0") == :nomatch
        assert :binary.match(Mirage.to_bytes!(small, strip: false), "Exif\0\0") != :nomatch
      end
    end

    describe "animation" do
      @tag :shared
      test "thumbnails keep every frame unless frames: :first" do
        gif = Shared.read!("bench-images/anim_480x320_30f.gif")
        {:ok, bytes, thumb} = Mirage.thumbnail(gif, 96, 64)
        assert {thumb.format, thumb.width, thumb.height} == {:gif, 96, 64}
        assert %{frames: 30, width: 96, height: 64} = Mirage.info!(bytes)

        {:ok, still, _} = Mirage.thumbnail(gif, 96, 64, frames: :first)
        assert %{frames: 1} = Mirage.info!(still)

        {:ok, webp, _} = Mirage.thumbnail(gif, 96, 64, format: :webp)
        assert %{format: :webp, frames: 30} = Mirage.info!(webp)
      end

      @tag :shared
      test "the pixel budget counts every frame" do
        gif = Shared.read!("bench-images/anim_480x320_30f.gif")
        # 30 frames of 480x320 is 4.6 MP, over a 2 MP budget; the first frame alone is not.
        assert Mirage.thumbnail(gif, 48, 32, max_pixels: 2_000_000) == {:error, :too_many_pixels}
        assert {:ok, _, _} = Mirage.thumbnail(gif, 48, 32, max_pixels: 2_000_000, frames: :first)
      end
    end

    describe "formats and allowlists" do
      test "formats/0 lists what can be read and written" do
        %{read: read, write: write, allowed: allowed} = Mirage.formats()

        for format <- [:jpg, :png, :gif, :webp, :bmp, :tiff],
            do: assert(format in read and format in write)

        assert allowed == read
      end

      test "a per-call allowlist refuses other formats" do
        png = Mirage.to_bytes!(Mirage.from_bytes!(@sample), format: :png)

        assert Mirage.from_bytes(png, allowed_formats: [:jpg]) ==
                 {:error, :unsupported_image_format}

        assert Mirage.info(png, allowed_formats: [:jpg, :gif]) ==
                 {:error, :unsupported_image_format}

        assert Mirage.thumbnail(png, 8, 8, allowed_formats: [:jpg]) ==
                 {:error, :unsupported_image_format}

        assert {:ok, %Mirage{format: :png}} = Mirage.from_bytes(png, allowed_formats: [:png])
      end
    end

    describe "option validation" do
      test "unknown options and bad values raise ArgumentError naming them" do
        assert_raise ArgumentError, ~r/unknown option :colour for Mirage.thumbnail\/4/, fn ->
          Mirage.thumbnail(@sample, 10, 10, colour: :red)
        end

        for {opt, value} <- [
              fit: :stretch,
              gravity: :up,
              gravity: {2, 0},
              filter: :box,
              upscale: "no",
              auto_orient: 1,
              format: :heic,
              quality: 0,
              quality: 101,
              strip: nil,
              frames: 3,
              max_pixels: 0,
              allowed_formats: [:eps],
              allowed_formats: []
            ] do
          assert_raise ArgumentError, ~r/invalid value for option #{inspect(opt)}/, fn ->
            Mirage.thumbnail(@sample, 10, 10, [{opt, value}])
          end
        end

        image = Mirage.from_bytes!(@sample)

        assert_raise ArgumentError, ~r/invalid value for option :compress_level/, fn ->
          Mirage.to_bytes(image, format: :png, compress_level: 10)
        end

        assert_raise ArgumentError, ~r/unknown option :fit for Mirage.to_bytes\/2/, fn ->
          Mirage.to_bytes(image, fit: :fill)
        end

        assert_raise ArgumentError, ~r/invalid value for option :background/, fn ->
          Mirage.rotate(image, 10, background: {300, 0, 0})
        end

        assert_raise ArgumentError, ~r/keyword list/, fn -> Mirage.from_bytes(@sample, %{}) end
      end
    end
  end
end
