defmodule Mirage.OptionsTest do
  # Not async: these tests change the application environment.
  use ExUnit.Case, async: false
  doctest Mirage.Options

  @sample File.read!("samples/rocket.jpg")

  setup do
    on_exit(fn ->
      Application.delete_env(:mirage, :allowed_formats)
      Application.delete_env(:mirage, :max_pixels)
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

  test "bad application settings raise ArgumentError naming them" do
    Application.put_env(:mirage, :max_pixels, -5)
    assert_raise ArgumentError, ~r/option :max_pixels/, fn -> Mirage.from_bytes(@sample) end
    Application.put_env(:mirage, :max_pixels, 1_000_000)
    Application.put_env(:mirage, :allowed_formats, [:jpg, :psd])
    assert_raise ArgumentError, ~r/option :allowed_formats/, fn -> Mirage.info(@sample) end
  end

  test "validate!/3 fills in the limits and keeps what was given" do
    assert %{quality: 50, max_pixels: 50_000_000, allowed_formats: formats} =
             Mirage.Options.validate!([quality: 50], [:quality], "to_bytes/2")

    assert formats == Mirage.Options.formats()
    assert %{gravity: {0.0, 1.0}} = Mirage.Options.validate!([gravity: {0, 1}], [:gravity], "t")
  end
end
