defmodule Mirage.Conformance.CostTest do
  # Bounded cost and deadlines through the public API, once per transport (the Python
  # core's own tests are tests/test_cost.py).
  use Mirage.ConformanceCase
  import ExUnit.CaptureLog
  require Logger

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

    # @sample with `n` EXIF entries (tags 40000 and up) whose data lies past the end of
    # the file: Pillow warns once per entry while reading the orientation.
    defp with_bad_exif(n) do
      <<0xFF, 0xD8, rest::binary>> = @sample

      entries =
        for tag <- 40_000..(40_000 + n - 1),
            into: <<>>,
            do: <<tag::little-16, 2::little-16, 1_000_000::little-32, 0x7FFF0000::little-32>>

      exif = "Exif\0\0" <> "II*\0" <> <<8::little-32, n::little-16>> <> entries <> <<0::32>>
      <<0xFF, 0xD8, 0xFF, 0xE1, byte_size(exif) + 2::16>> <> exif <> rest
    end

    test "a call's warning flood logs its first 20 lines and a count of the rest" do
      bytes = with_bad_exif(1234)

      log =
        capture_log(fn ->
          assert {:ok, %{format: :jpg}} = Mirage.info(bytes)
          # The NIF's lines pass through the forwarder; a port's precede its reply.
          :sys.get_state(Mirage.LogForwarder)
          Logger.flush()
        end)

      # Other tests log meanwhile: count this call's lines by their tags.
      assert log |> String.split("\n") |> Enum.count(&(&1 =~ ~r/Skipping tag 4\d{4}$/)) == 20
      assert log =~ "1214 more lines of output from this call suppressed"
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
