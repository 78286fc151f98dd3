defmodule Mirage.Conformance.APITest do
  use Mirage.ConformanceCase

  conformance async: true do
    alias Mirage.Test.Shared

    @sample File.read!("samples/rocket.jpg")

    describe "from_bytes/1" do
      test "reads format, size and byte size from the header", %{transport: transport} do
        assert {:ok, %Mirage{} = image} = Mirage.from_bytes(@sample)
        assert {image.format, image.width, image.height} == {:jpg, 640, 427}
        assert image.byte_size == byte_size(@sample)
        assert image.transport == Mirage.Transport.transports()[transport]
      end

      @tag :shared
      test "reads real JPEG, PNG, GIF and WebP files" do
        for {file, format, width, height} <- [
              {"bench-images/photo_12mp.jpg", :jpg, 4000, 3000},
              {"bench-images/photo_2mp.jpg", :jpg, 1800, 1200},
              {"bench-images/photo_rgba_1000.png", :png, 1000, 1000},
              {"bench-images/real_coffee_600x400.png", :png, 600, 400},
              {"bench-images/photo_2000x1500.webp", :webp, 2000, 1500},
              {"bench-images/anim_480x320_30f.gif", :gif, 480, 320}
            ] do
          bytes = Shared.read!(file)
          assert {:ok, image} = Mirage.from_bytes(bytes), file
          assert {image.format, image.width, image.height} == {format, width, height}, file
          assert image.byte_size == byte_size(bytes)
        end
      end

      test "answers :unsupported_image_format for garbage and empty input" do
        assert Mirage.from_bytes("definitely not an image") == {:error, :unsupported_image_format}
        assert Mirage.from_bytes(<<>>) == {:error, :unsupported_image_format}

        assert Mirage.from_bytes(:crypto.strong_rand_bytes(4096) |> then(&(<<0>> <> &1))) ==
                 {:error, :unsupported_image_format}
      end

      test "answers :truncated_image when the header is cut short" do
        assert Mirage.from_bytes(binary_part(@sample, 0, 100)) == {:error, :truncated_image}
        assert Mirage.from_bytes(<<0xFF, 0xD8>>) == {:error, :truncated_image}
      end

      test "defers a corrupt body to the first operation that decodes pixels" do
        truncated = binary_part(@sample, 0, div(byte_size(@sample), 2))
        assert {:ok, image} = Mirage.from_bytes(truncated)
        assert {image.width, image.height} == {640, 427}
        assert Mirage.resize(image, 32, 32) == {:error, :truncated_image}
      end

      @tag :shared
      test "refuses images over the pixel budget from the header alone" do
        bytes = Shared.read!("corpus/synthetic/jpeg_sof_9000x9000_tiny.jpg")
        assert Mirage.from_bytes(bytes) == {:error, :too_many_pixels}
      end

      @tag :shared
      test "refuses formats off the allowlist, such as EPS" do
        eps =
          Shared.read!(
            "corpus/hostile/pillow/eps__timeout-d675703545fee17acab56e5fec644c19979175de.eps"
          )

        assert Mirage.from_bytes(eps) == {:error, :unsupported_image_format}
      end

      test "raises ArgumentError for anything but a binary" do
        for bad <- [nil, 123, ~c"charlist", [<<1, 2>>], %{}, <<1::size(3)>>] do
          assert_raise ArgumentError, ~r/expected a binary/, fn -> Mirage.from_bytes(bad) end
        end
      end
    end

    # A helper rather than a setup block: ExUnit keeps setup contexts (and so their
    # images) alive after the test, which Mirage.NIFTest's handle count would see.
    defp sample_image, do: Mirage.from_bytes!(@sample)

    describe "resize/3" do
      test "fills exactly width x height, in the source format" do
        image = sample_image()

        for {w, h} <- [{256, 256}, {300, 100}, {50, 400}, {1, 1}, {1280, 854}] do
          assert {:ok, bytes, resized} = Mirage.resize(image, w, h)
          assert {resized.format, resized.width, resized.height} == {:jpg, w, h}
          assert resized.byte_size == byte_size(bytes)
          assert {:ok, reread} = Mirage.from_bytes(bytes)
          assert {reread.format, reread.width, reread.height} == {:jpg, w, h}
        end
      end

      test "returns an image that can be resized again" do
        image = sample_image()
        {_bytes, half} = Mirage.resize!(image, 320, 200)
        assert {:ok, bytes, quarter} = Mirage.resize(half, 160, 100)
        assert {quarter.width, quarter.height} == {160, 100}
        assert {:ok, %Mirage{width: 160, height: 100}} = Mirage.from_bytes(bytes)
      end

      @tag :shared
      test "keeps PNG, GIF and WebP as they are" do
        for {file, format} <- [
              {"bench-images/real_coffee_600x400.png", :png},
              {"bench-images/anim_480x320_30f.gif", :gif},
              {"bench-images/photo_2000x1500.webp", :webp}
            ] do
          image = Mirage.from_bytes!(Shared.read!(file))
          assert {:ok, bytes, resized} = Mirage.resize(image, 120, 90), file
          assert resized.format == format

          assert {:ok, %Mirage{format: ^format, width: 120, height: 90}} =
                   Mirage.from_bytes(bytes)
        end
      end

      test "answers :too_many_pixels for outputs over the budget, before any work" do
        image = sample_image()
        assert Mirage.resize(image, 100_000, 100_000) == {:error, :too_many_pixels}
        assert Mirage.resize(image, 50_000_001, 1) == {:error, :too_many_pixels}
      end

      test "raises ArgumentError for bad dimensions or a non-image" do
        image = sample_image()

        for {w, h} <- [{0, 10}, {10, 0}, {-1, 10}, {1.5, 10}, {"10", 10}, {10, nil}] do
          assert_raise ArgumentError, ~r/must be a positive integer/, fn ->
            Mirage.resize(image, w, h)
          end
        end

        assert_raise ArgumentError, ~r/expected a %Mirage\{\}/, fn ->
          Mirage.resize(@sample, 10, 10)
        end

        assert_raise ArgumentError, fn ->
          Mirage.resize(%{image | resource: make_ref()}, 10, 10)
        end
      end
    end

    describe "bang variants" do
      test "raise Mirage.Error carrying the reason" do
        error = assert_raise Mirage.Error, fn -> Mirage.from_bytes!("nope") end
        assert error.reason == :unsupported_image_format
        assert Exception.message(error) =~ "unsupported_image_format"

        image = Mirage.from_bytes!(binary_part(@sample, 0, 20_000))
        error = assert_raise Mirage.Error, fn -> Mirage.resize!(image, 10, 10) end
        assert error.reason == :truncated_image
      end
    end
  end
end
