defmodule Mirage.Conformance.ConcurrencyTest do
  # One image shared by many processes: every call's output depends only on the image
  # and that call's options, whatever ran before or at the same time; release/1 racing
  # with calls answers "released" or the right bytes, nothing else.
  use Mirage.ConformanceCase

  conformance async: true do
    @sample File.read!("samples/rocket.jpg")

    @option_sets [
      [format: :jpg, quality: 5],
      [format: :jpg, quality: 95, progressive: true],
      [format: :png, compress_level: 9],
      [format: :png],
      [format: :webp, lossless: true],
      [format: :webp, quality: 10],
      [format: :tiff],
      [format: :gif],
      [format: :bmp]
    ]

    defp from_crop, do: Mirage.crop!(Mirage.from_bytes!(@sample), 40, 30, 240, 160)

    defp from_resize do
      {_bytes, image} = Mirage.resize!(Mirage.from_bytes!(@sample), 200, 150, format: :png)
      image
    end

    # Each reference from an image of its own that was never encoded before.
    defp solo(make, opts), do: Mirage.to_bytes!(make.(), opts)

    for {name, make} <- [crop: &__MODULE__.made_by_crop/0, resize: &__MODULE__.made_by_resize/0] do
      test "concurrent to_bytes of one image from #{name}: every output equals its solo reference" do
        make = unquote(make)
        references = Map.new(@option_sets, &{&1, solo(make, &1)})
        shared = make.()
        callers = 8

        results =
          1..callers
          |> Enum.map(fn offset ->
            Task.async(fn ->
              for step <- 0..(length(@option_sets) - 1) do
                opts = Enum.at(@option_sets, rem(offset + step, length(@option_sets)))
                {opts, Mirage.to_bytes(shared, opts)}
              end
            end)
          end)
          |> Task.await_many(120_000)
          |> List.flatten()

        wrong =
          for {opts, answer} <- results, answer != {:ok, references[opts]}, uniq: true, do: opts

        assert wrong == [], "outputs differing from the solo reference: #{inspect(wrong)}"

        # And the image is unchanged: the same calls, one at a time, afterwards.
        stale =
          for opts <- @option_sets,
              Mirage.to_bytes(shared, opts) != {:ok, references[opts]},
              do: opts

        assert stale == []
      end
    end

    @doc false
    def made_by_crop, do: from_crop()
    @doc false
    def made_by_resize, do: from_resize()

    # Mixed operations, each a function of the shared image returning plain data.
    defp mixed_tasks do
      [
        fn im -> Mirage.to_bytes(im, format: :jpg, quality: 5) end,
        fn im -> Mirage.to_bytes(im, format: :webp, lossless: true) end,
        fn im -> Mirage.to_bytes(im, format: :png, compress_level: 9) end,
        fn im -> Mirage.to_bytes(im, format: :gif) end,
        fn im -> Mirage.to_bytes(im, format: :tiff) end,
        fn im -> with {:ok, b, t} <- Mirage.resize(im, 64, 48), do: {b, t.width, t.height} end,
        fn im ->
          with {:ok, b, _} <- Mirage.thumbnail(im, 90, 90, fit: :contain, format: :webp), do: b
        end,
        fn im ->
          with {:ok, b, _} <- Mirage.thumbnail(im, 50, 70, format: :png, filter: :lanczos), do: b
        end,
        fn im ->
          with {:ok, c} <- Mirage.crop(im, 10, 10, 50, 40), do: Mirage.to_bytes(c, format: :png)
        end,
        fn im ->
          with {:ok, r} <- Mirage.rotate(im, 30, background: {10, 20, 30}),
               do: Mirage.to_bytes(r, format: :png)
        end,
        fn im ->
          with {:ok, f} <- Mirage.flip(im, :vertical), do: Mirage.to_bytes(f, format: :bmp)
        end,
        fn im ->
          with {:ok, o} <- Mirage.auto_orient(im),
               do: Mirage.to_bytes(o, format: :jpg, quality: 95, progressive: true)
        end
      ]
    end

    test "200 processes with mixed operations on one image match their solo references" do
      tasks = mixed_tasks()
      references = Enum.map(tasks, fn task -> task.(from_crop()) end)
      assert Enum.all?(references, &(not match?({:error, _}, &1)))
      shared = from_crop()

      answers =
        0..199
        |> Enum.map(fn i ->
          index = rem(i * 7, length(tasks))
          Task.async(fn -> {index, Enum.at(tasks, index).(shared)} end)
        end)
        |> Task.await_many(300_000)

      wrong =
        for {index, answer} <- answers,
            answer != Enum.at(references, index),
            uniq: true,
            do: index

      assert wrong == [],
             "tasks whose concurrent answer differs from the solo one: #{inspect(wrong)}"
    end

    test "release/1 racing with calls: each call answers right or raises released" do
      image = from_crop()
      reference = Mirage.to_bytes!(image, format: :png)
      {:ok, _bytes, derived} = Mirage.resize(image, 40, 30, format: :png)
      derived_reference = Mirage.to_bytes!(derived, format: :png)
      parent = self()

      # Each caller keeps calling until it sees the release (or gives up).
      callers =
        for _ <- 1..20 do
          Task.async(fn ->
            send(parent, :started)
            call_until_released(image, reference, 300, [])
          end)
        end

      for _ <- 1..20, do: assert_receive(:started, 10_000)
      releasers = for _ <- 1..3, do: Task.async(fn -> Mirage.release(image) end)
      assert Task.await_many(releasers, 60_000) == [:ok, :ok, :ok]
      answers = callers |> Task.await_many(120_000) |> List.flatten()

      assert Enum.all?(answers, &(&1 in [:right, :released])), inspect(Enum.uniq(answers))
      assert :released in answers
      # After the release every call raises; what was made from the image before lives on.
      assert_raise ArgumentError, ~r/released/, fn -> Mirage.to_bytes(image) end
      assert_raise ArgumentError, ~r/released/, fn -> Mirage.resize(image, 8, 8) end
      assert Mirage.to_bytes!(derived, format: :png) == derived_reference
    end

    defp call_until_released(_image, _reference, 0, answers), do: answers

    defp call_until_released(image, reference, left, answers) do
      answer =
        try do
          case Mirage.to_bytes(image, format: :png) do
            {:ok, ^reference} -> :right
            other -> {:wrong, other}
          end
        rescue
          e in ArgumentError -> if e.message =~ "released", do: :released, else: {:raised, e}
        end

      if answer == :right,
        do: call_until_released(image, reference, left - 1, [answer | answers]),
        else: [answer | answers]
    end
  end
end
