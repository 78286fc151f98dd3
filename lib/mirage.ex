defmodule Mirage do
  @moduledoc """
  Image decoding, resizing and encoding, done by Python's Pillow.

  A drop-in for scrogson/mirage: `from_bytes/1` reads an image, `resize/3` makes a
  new one of exactly the requested size.

      iex> {:ok, image} = Mirage.from_bytes(File.read!("samples/rocket.jpg"))
      iex> {image.format, image.width, image.height}
      {:jpg, 640, 427}
      iex> {:ok, bytes, thumb} = Mirage.resize(image, 128, 128)
      iex> {thumb.format, thumb.width, thumb.height, thumb.byte_size == byte_size(bytes)}
      {:jpg, 128, 128, true}

  ## Errors
  Wrong argument types raise `ArgumentError`. Bad image data returns
  `{:error, reason}` with a reason from `Mirage.Error.reasons/0`; the `!` variants
  raise `Mirage.Error` instead.

  `from_bytes/1` reads only the header (format, size, orientation, frame count).
  Pixels are decoded by the first operation that needs them, so an image whose
  header is fine but whose body is corrupt or truncated is accepted by
  `from_bytes/1` and fails later, from `resize/3`, with `{:error, reason}`.

  ## Configuration
    * `config :mirage, max_pixels: n`: the largest width x height decoded or
      produced (default #{50_000_000}); larger gives `{:error, :too_many_pixels}`.
    * `config :mirage, python: path` or `MIRAGE_PYTHON`: the interpreter to embed,
      instead of the one recorded at build time (see `Mirage.NIF.Loader`).
  """

  @enforce_keys [:byte_size, :format, :width, :height, :resource]
  defstruct @enforce_keys

  @typedoc "Image formats Mirage reads and writes."
  @type format :: :jpg | :png | :gif | :webp | :bmp | :tiff

  @typedoc """
  An image: the size in bytes of its encoded form, its format and pixel size, and a
  reference to the image held by the Python core (opaque; released when dropped).
  """
  @type t :: %__MODULE__{
          byte_size: non_neg_integer(),
          format: format(),
          width: pos_integer(),
          height: pos_integer(),
          resource: Mirage.Transport.handle()
        }

  @default_max_pixels 50_000_000

  @doc """
  Reads an image's header from `bytes`, without decoding its pixels.

      iex> Mirage.from_bytes("not an image")
      {:error, :unsupported_image_format}
  """
  @spec from_bytes(binary()) :: {:ok, t()} | {:error, Mirage.Error.reason()}
  def from_bytes(bytes) when is_binary(bytes) do
    with {:ok, handle, format, width, height} <- transport().from_bytes(bytes, options()) do
      {:ok, image(byte_size(bytes), format, width, height, handle)}
    end
  end

  def from_bytes(other), do: raise(ArgumentError, "expected a binary, got: #{brief(other)}")

  @doc "Like `from_bytes/1`, but returns the image or raises `Mirage.Error`."
  @spec from_bytes!(binary()) :: t()
  def from_bytes!(bytes), do: bytes |> from_bytes() |> unwrap()

  @doc """
  Resizes `image` to exactly `width` x `height`: scaled to cover the box, then
  cropped around the centre (like mirage's `resize_to_fill`), with a triangle
  (bilinear) filter, after turning it upright by its EXIF orientation.

  Returns the encoded bytes, in the source format, and a `Mirage` struct that
  describes them and holds the resized image, so it can be resized again.

      iex> image = Mirage.from_bytes!(File.read!("samples/rocket.jpg"))
      iex> {:ok, _bytes, small} = Mirage.resize(image, 64, 32)
      iex> {small.width, small.height}
      {64, 32}
  """
  @spec resize(t(), pos_integer(), pos_integer()) ::
          {:ok, binary(), t()} | {:error, Mirage.Error.reason()}
  def resize(%__MODULE__{resource: handle}, width, height) do
    check_dimension!(:width, width)
    check_dimension!(:height, height)
    options = options()

    with :ok <- within_budget(width * height, options),
         {:ok, bytes, new_handle, format, w, h} <-
           transport().resize(handle, width, height, options) do
      {:ok, bytes, image(byte_size(bytes), format, w, h, new_handle)}
    end
  end

  def resize(other, _width, _height),
    do: raise(ArgumentError, "expected a %Mirage{} image, got: #{brief(other)}")

  @doc "Like `resize/3`, but returns `{bytes, image}` or raises `Mirage.Error`."
  @spec resize!(t(), pos_integer(), pos_integer()) :: {binary(), t()}
  def resize!(image, width, height) do
    case resize(image, width, height) do
      {:ok, bytes, resized} -> {bytes, resized}
      {:error, reason} -> raise Mirage.Error, reason: reason
    end
  end

  defp image(byte_size, format, width, height, handle) do
    %__MODULE__{
      byte_size: byte_size,
      format: format,
      width: width,
      height: height,
      resource: handle
    }
  end

  defp unwrap({:ok, image}), do: image
  defp unwrap({:error, reason}), do: raise(Mirage.Error, reason: reason)

  defp check_dimension!(_name, value) when is_integer(value) and value > 0, do: :ok

  defp check_dimension!(name, value),
    do: raise(ArgumentError, "#{name} must be a positive integer, got: #{brief(value)}")

  defp within_budget(pixels, %{max_pixels: max}) when pixels <= max, do: :ok
  defp within_budget(_pixels, _options), do: {:error, :too_many_pixels}

  defp options do
    max_pixels = Application.get_env(:mirage, :max_pixels, @default_max_pixels)

    unless is_integer(max_pixels) and max_pixels > 0 do
      raise ArgumentError, "config :mirage, max_pixels must be a positive integer"
    end

    %{max_pixels: max_pixels}
  end

  defp transport, do: Application.get_env(:mirage, :transport, Mirage.Transport.NIF)

  defp brief(term), do: inspect(term, limit: 5, printable_limit: 40)
end
