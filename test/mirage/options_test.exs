defmodule Mirage.OptionsTest do
  # Not async: these tests change the application environment.
  use ExUnit.Case, async: false
  doctest Mirage.Options

  @sample File.read!("samples/rocket.jpg")

  setup do
    on_exit(fn ->
      Application.delete_env(:mirage, :allowed_formats)
      Application.delete_env(:mirage, :max_pixels)
      Application.delete_env(:mirage, :timeout)
      Application.delete_env(:mirage, :max_scans)
      Application.delete_env(:mirage, :transport)
    end)
  end

  test "the application's allowlist applies to every call, and a call can override it" do
    Application.put_env(:mirage, :allowed_formats, [:png, :gif])
    assert Mirage.from_bytes(@sample) == {:error, :unsupported_image_format}
    assert Mirage.info(@sample) == {:error, :unsupported_image_format}
    assert Mirage.thumbnail(@sample, 8, 8) == {:error, :unsupported_image_format}
    assert %{allowed: [:png, :gif]} = Mirage.formats()
    assert {:ok, %Mirage{format: :jpg}} = Mirage.from_bytes(@sample, allowed_formats: [:jpg])
  end

  test "the application's pixel budget applies to every call, and a call can override it" do
    Application.put_env(:mirage, :max_pixels, 100_000)
    # 640 x 427 = 273 280 pixels.
    assert Mirage.from_bytes(@sample) == {:error, :too_many_pixels}
    assert Mirage.thumbnail(@sample, 200, 200) == {:error, :too_many_pixels}
    assert {:ok, _image} = Mirage.from_bytes(@sample, max_pixels: 300_000)
  end

  test "the scan limit refuses progressive JPEGs with more scans, from a call or the config" do
    {:ok, progressive} = Mirage.to_bytes(Mirage.from_bytes!(@sample), progressive: true)
    assert {:ok, %{width: 640}} = Mirage.info(progressive)
    assert Mirage.info(progressive, max_scans: 2) == {:error, :too_complex}
    assert Mirage.thumbnail(progressive, 8, 8, max_scans: 2) == {:error, :too_complex}
    assert {:ok, _, _} = Mirage.thumbnail(@sample, 8, 8, max_scans: 2)
    Application.put_env(:mirage, :max_scans, 2)
    assert Mirage.from_bytes(progressive) == {:error, :too_complex}
    assert {:ok, _image} = Mirage.from_bytes(progressive, max_scans: 50)
    assert :too_complex in Mirage.Error.reasons()

    assert_raise ArgumentError, ~r/option :max_scans/, fn ->
      Mirage.info(@sample, max_scans: 0)
    end
  end

  test "bad application settings raise ArgumentError naming them" do
    Application.put_env(:mirage, :max_pixels, -5)
    assert_raise ArgumentError, ~r/option :max_pixels/, fn -> Mirage.from_bytes(@sample) end
    Application.put_env(:mirage, :max_pixels, 1_000_000)
    Application.put_env(:mirage, :allowed_formats, [:jpg, :psd])
    assert_raise ArgumentError, ~r/option :allowed_formats/, fn -> Mirage.info(@sample) end
  end

  test "validate!/3 fills in the limits and keeps what was given" do
    assert {nil, %{quality: 50, max_pixels: 50_000_000, allowed_formats: formats}} =
             Mirage.Options.validate!([quality: 50], [:quality], "to_bytes/2")

    assert formats == Mirage.Options.formats()

    assert {nil, %{gravity: {0.0, 1.0}}} =
             Mirage.Options.validate!([gravity: {0, 1}], [:gravity], "t")
  end

  test "improper and non-keyword lists raise ArgumentError, not FunctionClauseError" do
    for opts <- [[{:quality, 5} | :tail], [:quality], [{"quality", 5}], %{quality: 5}, :nope] do
      assert_raise ArgumentError, ~r/must be a keyword list/, fn ->
        Mirage.Options.validate!(opts, [:quality], "to_bytes/2")
      end
    end

    for formats <- [[:jpg | :png], [:jpg, :psd], [], :jpg] do
      assert_raise ArgumentError, ~r/option :allowed_formats/, fn ->
        Mirage.info(@sample, allowed_formats: formats)
      end
    end
  end

  test ":timeout and :transport are taken by every function and checked" do
    image = Mirage.from_bytes!(@sample)

    for call <- [
          &Mirage.from_bytes(@sample, &1),
          &Mirage.info(@sample, &1),
          &Mirage.thumbnail(@sample, 8, 8, &1),
          &Mirage.resize(image, 8, 8, &1),
          &Mirage.crop(image, 0, 0, 8, 8, &1),
          &Mirage.rotate(image, 90, &1),
          &Mirage.flip(image, :horizontal, &1),
          &Mirage.auto_orient(image, &1),
          &Mirage.to_bytes(image, &1),
          &Mirage.formats(&1)
        ] do
      assert {:ok, _} = ok(call.(timeout: 5_000, transport: :nif))
      assert {:ok, _} = ok(call.(timeout: :infinity))
      assert_raise ArgumentError, ~r/option :timeout/, fn -> call.(timeout: 0) end
      assert_raise ArgumentError, ~r/option :timeout/, fn -> call.(timeout: 1.5) end

      assert_raise ArgumentError, ~r/option :transport.*one of :nif/, fn ->
        call.(transport: :smtp)
      end
    end
  end

  test "the application's transport and timeout settings are checked" do
    Application.put_env(:mirage, :timeout, -1)
    assert_raise ArgumentError, ~r/option :timeout/, fn -> Mirage.info(@sample) end
    Application.put_env(:mirage, :timeout, 10_000)
    Application.put_env(:mirage, :transport, :smtp)

    assert_raise ArgumentError, ~r/config :mirage, transport: :smtp/, fn ->
      Mirage.info(@sample)
    end

    Application.put_env(:mirage, :transport, :nif)
    assert {:ok, _} = Mirage.info(@sample)
  end

  defp ok(%{read: _} = formats), do: {:ok, formats}
  defp ok({:ok, _bytes, image}), do: {:ok, image}
  defp ok(other), do: other
end
