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
