defmodule Mirage.Conformance.BadInputTest do
  # Every public function with every kind of wrong argument: wrong types raise
  # ArgumentError naming the problem; nothing answers :internal_error, reaches Python
  # with a term it cannot use, or treats a forged field as image bytes.
  use Mirage.ConformanceCase

  conformance async: true do
    @sample File.read!("samples/rocket.jpg")
    @huge Integer.pow(10, 400)

    setup_all do
      {:ok, image: Mirage.from_bytes!(@sample)}
    end

    # Calls each public function with `image` in the image's place.
    defp with_image(image) do
      [
        {"resize/4", fn -> Mirage.resize(image, 10, 10) end},
        {"thumbnail/4", fn -> Mirage.thumbnail(image, 10, 10) end},
        {"crop/6", fn -> Mirage.crop(image, 0, 0, 10, 10) end},
        {"rotate/3", fn -> Mirage.rotate(image, 45) end},
        {"flip/3", fn -> Mirage.flip(image, :horizontal) end},
        {"auto_orient/2", fn -> Mirage.auto_orient(image) end},
        {"to_bytes/2", fn -> Mirage.to_bytes(image) end},
        {"release/1", fn -> Mirage.release(image) end},
        {"resize!/4", fn -> Mirage.resize!(image, 10, 10) end},
        {"to_bytes!/2", fn -> Mirage.to_bytes!(image) end}
      ]
    end

    defp forged(image) do
      [
        {"resource nil", %{image | resource: nil}},
        {"resource a binary (the sample's own bytes)", %{image | resource: @sample}},
        {"resource an atom", %{image | resource: :image}},
        {"resource an integer", %{image | resource: 1}},
        {"resource a reference that is no image", %{image | resource: make_ref()}},
        {"resource a tuple", %{image | resource: {:handle, 1}}},
        {"transport nil", %{image | transport: nil}},
        {"transport not a transport", %{image | transport: Enum}},
        {"transport a missing module", %{image | transport: NoSuchTransport}},
        {"transport a binary", %{image | transport: "nif"}},
        {"a map posing as the struct", %{__struct__: Mirage, resource: image.resource}}
      ]
    end

    test "a forged %Mirage{} raises ArgumentError naming the field, in every function",
         %{image: image} do
      for {what, fake} <- forged(image), {function, call} <- with_image(fake) do
        error =
          try do
            call.()
            flunk("#{function} with #{what} did not raise")
          rescue
            e in ArgumentError -> e
          end

        assert error.message =~ ~r/not a live Mirage image/,
               "#{function}, #{what}: #{error.message}"
      end
    end

    test "the real image still works after the forgeries", %{image: image} do
      assert {:ok, _bytes, %Mirage{width: 10}} = Mirage.resize(image, 10, 10)
    end

    test "a released image raises ArgumentError in every function but release/1" do
      image = Mirage.from_bytes!(@sample)
      {:ok, _bytes, small} = Mirage.resize(image, 20, 20)
      assert Mirage.release(small) == :ok

      for {function, call} <- with_image(small), function != "release/1" do
        error = assert_raise ArgumentError, call
        assert error.message =~ "released", function
      end

      assert Mirage.release(small) == :ok
    end

    @not_binaries [nil, 1, 1.5, :atom, ~c"charlist", [<<1>>], {<<1>>}, %{}, <<1::3>>, <<1, 2::4>>]

    test "non-binaries and bitstrings where bytes are expected raise ArgumentError" do
      for bad <- @not_binaries do
        assert_raise ArgumentError, fn -> Mirage.from_bytes(bad) end
        assert_raise ArgumentError, fn -> Mirage.info(bad) end
        assert_raise ArgumentError, fn -> Mirage.thumbnail(bad, 10, 10) end
        assert_raise ArgumentError, fn -> Mirage.from_bytes!(bad) end
      end
    end

    test "sub-binaries are bytes like any other" do
      padded = <<0, 1, 2>> <> @sample <> <<3, 4>>
      sub = binary_part(padded, 3, byte_size(@sample))
      assert {:ok, %Mirage{width: 640}} = Mirage.from_bytes(sub)
      assert {:ok, %{width: 640}} = Mirage.info(sub)
      assert {:ok, _bytes, %Mirage{width: 8}} = Mirage.thumbnail(sub, 8, 8)
      # A sub-binary of something that is not an image is still not an image.
      assert Mirage.from_bytes(binary_part(padded, 0, 40)) == {:error, :unsupported_image_format}
    end

    test "huge sizes and coordinates are refused before Python", %{image: image} do
      calls = [
        fn -> Mirage.resize(image, @huge, 10) end,
        fn -> Mirage.resize(image, 10, @huge) end,
        fn -> Mirage.thumbnail(image, @huge, @huge, fit: :contain) end,
        fn -> Mirage.thumbnail(@sample, @huge, 1, fit: :cover) end,
        fn -> Mirage.crop(image, @huge, 0, 1, 1) end,
        fn -> Mirage.crop(image, 0, @huge, 1, 1) end,
        fn -> Mirage.crop(image, 0, 0, @huge, 1) end,
        fn -> Mirage.crop(image, 0, 0, 1, @huge) end,
        fn -> Mirage.resize(image, 2_147_483_648, 1, fit: :contain) end
      ]

      for call <- calls do
        assert_raise ArgumentError, ~r/at most 2147483647/, call
      end

      # The largest accepted side still gets an answer, not a crash.
      assert Mirage.resize(image, 2_147_483_647, 1) == {:error, :too_many_pixels}
      assert Mirage.crop(image, 2_147_483_647, 0, 1, 1) == {:error, :invalid_dimensions}
    end

    test "huge or fractional numbers elsewhere", %{image: image} do
      # Any whole number of degrees is a turn: reduced before it crosses to Python.
      assert {:ok, turned} = Mirage.rotate(image, @huge * 360 + 90)
      assert {turned.width, turned.height} == {427, 640}
      assert {:ok, _} = Mirage.rotate(image, -@huge * 360)

      for {key, value} <- [
            quality: @huge,
            quality: -1,
            compress_level: @huge,
            timeout: @huge,
            timeout: 0,
            max_pixels: -@huge,
            background: {@huge, 0, 0},
            gravity: {@huge, 0}
          ] do
        assert_raise ArgumentError, ~r/option #{inspect(key)}/, fn ->
          Mirage.thumbnail(image, 10, 10, [{key, value}])
        end
      end
    end

    test "negative and non-integer sizes raise ArgumentError", %{image: image} do
      for bad <- [0, -1, -@huge, 1.0, nil, "10", :ten] do
        assert_raise ArgumentError, fn -> Mirage.resize(image, bad, 10) end
        assert_raise ArgumentError, fn -> Mirage.thumbnail(@sample, 10, bad) end
        assert_raise ArgumentError, fn -> Mirage.crop(image, 0, 0, bad, 10) end
      end

      for bad <- [-1, -@huge, 1.0, nil] do
        assert_raise ArgumentError, fn -> Mirage.crop(image, bad, 0, 10, 10) end
      end

      for bad <- [nil, "45", :right, {45}] do
        assert_raise ArgumentError, fn -> Mirage.rotate(image, bad) end
      end

      assert_raise ArgumentError, fn -> Mirage.flip(image, :diagonal) end
    end

    test "improper and malformed option lists raise ArgumentError", %{image: image} do
      for bad <- [
            [{:quality, 5} | :tail],
            [:quality],
            %{quality: 5},
            {:quality, 5},
            "q=5",
            [{"quality", 5}]
          ] do
        assert_raise ArgumentError, ~r/keyword list/, fn -> Mirage.to_bytes(image, bad) end
        assert_raise ArgumentError, ~r/keyword list/, fn -> Mirage.from_bytes(@sample, bad) end

        assert_raise ArgumentError, ~r/keyword list/, fn ->
          Mirage.thumbnail(@sample, 5, 5, bad)
        end
      end

      for bad <- [[:jpg | :png], [:jpg, :psd], [], :jpg, [~c"jpg"]] do
        assert_raise ArgumentError, ~r/allowed_formats/, fn ->
          Mirage.from_bytes(@sample, allowed_formats: bad)
        end
      end
    end

    test "every function that takes options refuses malformed ones", %{image: image} do
      calls = [
        {"from_bytes", &Mirage.from_bytes(@sample, &1)},
        {"from_bytes!", &Mirage.from_bytes!(@sample, &1)},
        {"info", &Mirage.info(@sample, &1)},
        {"info!", &Mirage.info!(@sample, &1)},
        {"thumbnail", &Mirage.thumbnail(@sample, 5, 5, &1)},
        {"thumbnail!", &Mirage.thumbnail!(image, 5, 5, &1)},
        {"resize", &Mirage.resize(image, 5, 5, &1)},
        {"resize!", &Mirage.resize!(image, 5, 5, &1)},
        {"crop", &Mirage.crop(image, 0, 0, 5, 5, &1)},
        {"crop!", &Mirage.crop!(image, 0, 0, 5, 5, &1)},
        {"rotate", &Mirage.rotate(image, 90, &1)},
        {"rotate!", &Mirage.rotate!(image, 90, &1)},
        {"flip", &Mirage.flip(image, :vertical, &1)},
        {"flip!", &Mirage.flip!(image, :vertical, &1)},
        {"auto_orient", &Mirage.auto_orient(image, &1)},
        {"auto_orient!", &Mirage.auto_orient!(image, &1)},
        {"to_bytes", &Mirage.to_bytes(image, &1)},
        {"to_bytes!", &Mirage.to_bytes!(image, &1)},
        {"formats", &Mirage.formats(&1)}
      ]

      for {name, call} <- calls,
          bad <- [
            [{:timeout, 5} | :tail],
            [:timeout],
            %{timeout: 5},
            "timeout=5",
            [{"timeout", 5}]
          ] do
        error = assert_raise ArgumentError, fn -> call.(bad) end
        assert error.message =~ "keyword list", "#{name}: #{error.message}"
      end

      for {name, call} <- calls, bad <- [0, -1, 1.5, @huge * -1, :soon] do
        error = assert_raise ArgumentError, fn -> call.(timeout: bad) end
        assert error.message =~ "option :timeout", name
      end
    end

    test "release/1 of anything but an image raises ArgumentError" do
      for bad <- [nil, @sample, <<1::3>>, 1, :image, make_ref(), %{resource: 1}] do
        assert_raise ArgumentError, fn -> Mirage.release(bad) end
      end
    end

    test "nothing in this suite answered :internal_error", %{image: image} do
      # The answers that are not exceptions, collected in one place.
      answers = [
        Mirage.from_bytes(<<>>),
        Mirage.from_bytes(<<0>>),
        Mirage.info(<<0xFF>>),
        Mirage.crop(image, 630, 0, 20, 20),
        Mirage.thumbnail(<<"GIF89a">>, 5, 5)
      ]

      for answer <- answers, do: assert(match?({:error, r} when r != :internal_error, answer))
    end
  end
end
