defmodule Mirage do
  @moduledoc """
  Image decoding, resizing and encoding, done by Python's Pillow.

  A drop-in for scrogson/mirage (`from_bytes/1`, `resize/3`) grown into a toolkit
  for upload processing: `info/2`, `thumbnail/4`, `crop/6`, `rotate/3`, `flip/3`,
  `auto_orient/2`, `to_bytes/2` and `formats/1`.

      iex> {:ok, image} = Mirage.from_bytes(File.read!("samples/rocket.jpg"))
      iex> {image.format, image.width, image.height}
      {:jpg, 640, 427}
      iex> {:ok, bytes, thumb} = Mirage.resize(image, 128, 128)
      iex> {thumb.format, thumb.width, thumb.height, thumb.byte_size == byte_size(bytes)}
      {:jpg, 128, 128, true}

  ## Errors
  Wrong argument types, unknown options and bad option values raise
  `ArgumentError` naming the culprit; so do sizes and coordinates over 2147483647
  (no image is larger), a released image, and a `%Mirage{}` whose `resource` or
  `transport` was not made by Mirage. Bad image data returns `{:error, reason}` with
  a reason from `Mirage.Error.reasons/0`; the `!` variants raise `Mirage.Error`.

  `from_bytes/2` reads only the header (format, size, orientation, frame count).
  Pixels are decoded by the first operation that needs them, so an image whose
  header is fine but whose body is corrupt or truncated is accepted by
  `from_bytes/2` and fails later, from that operation, with `{:error, reason}`.

  ## Orientation
  `width` and `height` are those of the stored pixels. `resize/4` and
  `thumbnail/4` turn the image upright by its EXIF orientation first (unless
  `auto_orient: false`), the same way for every format. `crop/6`, `rotate/3` and
  `flip/3` work on the stored pixels; call `auto_orient/2` first to work on the
  image as displayed. Encoded output always displays the right way up.

  ## Options every function takes
    * `:max_pixels`: the largest width x height decoded or produced, counted over
      all frames of an animation (default `config :mirage, max_pixels: n`, else
      50 000 000); larger gives `{:error, :too_many_pixels}`.
    * `:max_scans`: the most scans a (progressive) JPEG may have (default
      `config :mirage, max_scans: n`, else 100; encoders write about 10). Each scan
      is a pass over the whole image, so a file of thousands of near-empty scans
      gives `{:error, :too_complex}` before any decoding, as do floods of markers,
      chunks, frames or pages that a header read would otherwise walk, and layouts
      whose work outgrows their pixels (TIFF strips or tiles, RLE BMPs; see
      docs/errors.md).
    * `:allowed_formats`: the formats that may be decoded (default
      `config :mirage, allowed_formats: [...]`, else all of `:jpg`, `:png`, `:gif`,
      `:webp`, `:bmp`, `:tiff`); others give `{:error, :unsupported_image_format}`.
    * `:transport`: which transport runs the call (default
      `config :mirage, transport: :nif`; see `Mirage.Transport`). A call on an
      image always goes to the transport that made it; naming another raises
      `ArgumentError`.
    * `:timeout`: milliseconds the call may take, or `:infinity` (default
      `config :mirage, timeout: ms`, else 30 000); see `Mirage.Options`.

  ## Held images
  Every `Mirage` struct refers to an image held by the Python core, on the
  transport that made it. `release/1` frees it now; otherwise the transport frees
  it as it documents (the NIF: at garbage collection, `Mirage.Transport.NIF`).
  The interpreter is found by `Mirage.Python`.
  """

  @enforce_keys [:byte_size, :format, :width, :height, :resource, :transport]
  defstruct @enforce_keys

  @typedoc "Image formats Mirage reads and writes."
  @type format :: :jpg | :png | :gif | :webp | :bmp | :tiff

  @typedoc """
  An image: the size of the encoded bytes it was read from or written to (`nil`
  after `crop/6` and the like, until `to_bytes/2`), its format and the size of its
  stored pixels, a reference to the image held by the Python core (opaque; freed
  by `release/1`, else as its transport documents) and the module of the
  transport that holds it.
  """
  @type t :: %__MODULE__{
          byte_size: non_neg_integer() | nil,
          format: format(),
          width: pos_integer(),
          height: pos_integer(),
          resource: Mirage.Transport.handle(),
          transport: module()
        }

  @type info :: %{
          format: format(),
          width: pos_integer(),
          height: pos_integer(),
          frames: pos_integer(),
          orientation: 1..8,
          has_alpha: boolean(),
          mode: String.t()
        }

  @type result :: {:ok, t()} | {:error, Mirage.Error.reason()}
  @type encoded :: {:ok, binary(), t()} | {:error, Mirage.Error.reason()}

  @doc """
  Reads an image's header from `bytes`, without decoding its pixels.

  Options: the limits `:max_pixels` and `:allowed_formats` (see the module doc).

      iex> Mirage.from_bytes("not an image")
      {:error, :unsupported_image_format}
      iex> Mirage.from_bytes(File.read!("samples/rocket.jpg"), allowed_formats: [:png])
      {:error, :unsupported_image_format}
  """
  @spec from_bytes(binary(), keyword()) :: result()
  def from_bytes(bytes, opts \\ []) do
    check_binary!(bytes)
    {transport, args} = request!(opts, [], nil, "from_bytes/2")

    with {:ok, image} <- call(transport, :from_bytes, bytes, args) do
      {:ok, image(transport, image, byte_size(bytes))}
    end
  end

  @doc "Like `from_bytes/2`, but returns the image or raises `Mirage.Error`."
  @spec from_bytes!(binary(), keyword()) :: t()
  def from_bytes!(bytes, opts \\ []), do: bytes |> from_bytes(opts) |> unwrap()

  @doc """
  Describes an image from its header alone: no pixels are decoded, so a large
  upload can be refused cheaply. `width` and `height` are the stored size;
  `orientation` is the EXIF orientation (1-8, 1 when absent); `mode` is Pillow's
  pixel mode (`"RGB"`, `"RGBA"`, `"L"`, `"P"`, `"CMYK"`...).

      iex> {:ok, info} = Mirage.info(File.read!("samples/rocket.jpg"))
      iex> Map.take(info, [:format, :width, :height, :frames, :has_alpha, :mode])
      %{format: :jpg, width: 640, height: 427, frames: 1, has_alpha: false, mode: "RGB"}
  """
  @spec info(binary(), keyword()) :: {:ok, info()} | {:error, Mirage.Error.reason()}
  def info(bytes, opts \\ []) do
    check_binary!(bytes)
    {transport, args} = request!(opts, [], nil, "info/2")
    call(transport, :info, bytes, args)
  end

  @doc "Like `info/2`, but returns the map or raises `Mirage.Error`."
  @spec info!(binary(), keyword()) :: info()
  def info!(bytes, opts \\ []), do: bytes |> info(opts) |> unwrap()

  @doc """
  Makes a thumbnail of `source` (encoded bytes or a `Mirage` image) in a `width` x
  `height` box, and encodes it.

  Fast the way libvips' thumbnail is, also for bytes in memory: the header is read
  first; a JPEG is decoded at the largest reduced DCT scale that still leaves 2x
  for the final resample; the stored pixels are reduced and resampled once; only
  the small result is turned upright.

  Options:
    * `:fit` - `:fill` (default: exactly `width` x `height`, scaled to cover and
      cropped), `:contain` (fits inside, aspect kept), `:cover` (covers the box,
      aspect kept, not cropped) or `:exact` (stretched). A side that comes out
      at n.5 pixels rounds up: 512x257 contained in 256x256 is 256x129.
    * `:gravity` - what `:fill` keeps when cropping: `:center` (default),
      `:north`, `:south`, `:east`, `:west`, `:north_east`, `:north_west`,
      `:south_east`, `:south_west`, or `{x, y}` with both in `0..1`.
    * `:filter` - `:bilinear` (default, a triangle filter), `:nearest`, `:bicubic`
      or `:lanczos`.
    * `:upscale` - `false` never enlarges (the result may be smaller than the box);
      default `true`.
    * `:auto_orient` - apply the EXIF orientation first (default `true`).
    * `:format` - output format (default: the source's); `:quality` - 1..100 for
      `:jpg` (default 85) and `:webp` (default 80).
    * `:strip` - drop EXIF, XMP and comments (default `true`); the colour profile
      and the orientation are kept either way. EXIF too costly to write back (see
      docs/errors.md) is dropped with a warning, as unreadable EXIF is.
    * `:frames` - `:all` (default) keeps every frame and its timing of an animated
      GIF, WebP or PNG; `:first` makes a still.
    * `:threads` - the most threads the call may use (a large JPEG's decode, an
      animation's frames): `:auto` (default) uses the cores, up to 4 for a JPEG;
      `1` keeps the call on one, e.g. when concurrent callers already keep every
      core busy. The output is the same bytes whatever it is.
    * the limits `:max_pixels` and `:allowed_formats`.

      iex> bytes = File.read!("samples/rocket.jpg")
      iex> {:ok, _webp, thumb} = Mirage.thumbnail(bytes, 200, 200, fit: :contain, format: :webp)
      iex> {thumb.format, thumb.width, thumb.height}
      {:webp, 200, 133}
  """
  @spec thumbnail(binary() | t(), pos_integer(), pos_integer(), keyword()) :: encoded()
  def thumbnail(source, width, height, opts \\ []) do
    case source do
      %__MODULE__{} = image ->
        resample(:thumbnail, image, width, height, opts, "thumbnail/4")

      bytes when is_binary(bytes) ->
        resample(:thumbnail, bytes, width, height, opts, "thumbnail/4")

      other ->
        raise ArgumentError, "expected a binary or a %Mirage{}, got: #{brief(other)}"
    end
  end

  @doc "Like `thumbnail/4`, but returns `{bytes, image}` or raises `Mirage.Error`."
  @spec thumbnail!(binary() | t(), pos_integer(), pos_integer(), keyword()) :: {binary(), t()}
  def thumbnail!(source, width, height, opts \\ []),
    do: source |> thumbnail(width, height, opts) |> unwrap()

  @doc """
  Resizes `image` to exactly `width` x `height`: scaled to cover the box, then
  cropped around the centre (like mirage's `resize_to_fill`), with a triangle
  (bilinear) filter, after turning it upright by its EXIF orientation.

  Returns the encoded bytes, in the source format, and a `Mirage` struct that
  describes them and holds the resized image, so it can be resized again. Takes
  the options of `thumbnail/4`, with the same defaults.

      iex> image = Mirage.from_bytes!(File.read!("samples/rocket.jpg"))
      iex> {:ok, _bytes, small} = Mirage.resize(image, 64, 32)
      iex> {small.width, small.height}
      {64, 32}
  """
  @spec resize(t(), pos_integer(), pos_integer(), keyword()) :: encoded()
  def resize(image, width, height, opts \\ [])

  def resize(%__MODULE__{} = image, width, height, opts),
    do: resample(:resize, image, width, height, opts, "resize/4")

  def resize(other, _width, _height, _opts),
    do: raise(ArgumentError, "expected a %Mirage{} image, got: #{brief(other)}")

  @doc "Like `resize/4`, but returns `{bytes, image}` or raises `Mirage.Error`."
  @spec resize!(t(), pos_integer(), pos_integer(), keyword()) :: {binary(), t()}
  def resize!(image, width, height, opts \\ []),
    do: image |> resize(width, height, opts) |> unwrap()

  @doc """
  Cuts the `width` x `height` region at (`x`, `y`) out of the stored pixels. A
  region reaching past the image gives `{:error, :invalid_dimensions}`. Options:
  the ones every function takes (see the module doc).

      iex> image = Mirage.from_bytes!(File.read!("samples/rocket.jpg"))
      iex> {:ok, part} = Mirage.crop(image, 10, 20, 100, 50)
      iex> {part.width, part.height, part.byte_size}
      {100, 50, nil}
  """
  @spec crop(t(), non_neg_integer(), non_neg_integer(), pos_integer(), pos_integer(), keyword()) ::
          result()
  def crop(image, x, y, width, height, opts \\ []) do
    check_image!(image)
    check_integer!(:x, x, 0)
    check_integer!(:y, y, 0)
    check_integer!(:width, width, 1)
    check_integer!(:height, height, 1)
    {transport, args} = request!(opts, [], image, "crop/6")
    derive(transport, :crop, image, Map.merge(args, %{x: x, y: y, width: width, height: height}))
  end

  @doc "Like `crop/6`, but returns the image or raises `Mirage.Error`."
  @spec crop!(t(), non_neg_integer(), non_neg_integer(), pos_integer(), pos_integer(), keyword()) ::
          t()
  def crop!(image, x, y, width, height, opts \\ []),
    do: image |> crop(x, y, width, height, opts) |> unwrap()

  @doc """
  Rotates clockwise by `degrees`, growing the canvas to hold the whole image.
  Multiples of 90 are exact; other angles resample bicubically and fill the
  corners with `:background` (`{r, g, b}` or `{r, g, b, a}`; default transparent
  for images with alpha, black otherwise).

      iex> image = Mirage.from_bytes!(File.read!("samples/rocket.jpg"))
      iex> {:ok, turned} = Mirage.rotate(image, 90)
      iex> {turned.width, turned.height}
      {427, 640}
  """
  @spec rotate(t(), number(), keyword()) :: result()
  def rotate(image, degrees, opts \\ []) do
    check_image!(image)

    unless is_number(degrees),
      do: raise(ArgumentError, "degrees must be a number, got: #{brief(degrees)}")

    {transport, args} = request!(opts, Mirage.Options.allowed(:rotate), image, "rotate/3")
    # A whole number of degrees is a turn: reduced here, no bignum crosses to Python.
    degrees = if is_integer(degrees), do: Integer.mod(degrees, 360), else: degrees
    derive(transport, :rotate, image, Map.put(args, :degrees, degrees))
  end

  @doc "Like `rotate/3`, but returns the image or raises `Mirage.Error`."
  @spec rotate!(t(), number(), keyword()) :: t()
  def rotate!(image, degrees, opts \\ []), do: image |> rotate(degrees, opts) |> unwrap()

  @doc """
  Mirrors the image: `:horizontal` swaps left and right, `:vertical` top and bottom.
  Options: the ones every function takes (see the module doc).
  """
  @spec flip(t(), :horizontal | :vertical, keyword()) :: result()
  def flip(image, direction, opts \\ [])

  def flip(image, direction, opts) when direction in [:horizontal, :vertical] do
    check_image!(image)
    {transport, args} = request!(opts, [], image, "flip/3")
    derive(transport, :flip, image, Map.put(args, :direction, direction))
  end

  def flip(_image, direction, _opts),
    do:
      raise(ArgumentError, "direction must be :horizontal or :vertical, got: #{brief(direction)}")

  @doc "Like `flip/3`, but returns the image or raises `Mirage.Error`."
  @spec flip!(t(), :horizontal | :vertical, keyword()) :: t()
  def flip!(image, direction, opts \\ []), do: image |> flip(direction, opts) |> unwrap()

  @doc """
  Applies the EXIF orientation to the pixels, so that `width` and `height` are
  those of the image as displayed. Options: the ones every function takes (see the
  module doc).
  """
  @spec auto_orient(t(), keyword()) :: result()
  def auto_orient(image, opts \\ []) do
    check_image!(image)
    {transport, args} = request!(opts, [], image, "auto_orient/2")
    derive(transport, :auto_orient, image, args)
  end

  @doc "Like `auto_orient/2`, but returns the image or raises `Mirage.Error`."
  @spec auto_orient!(t(), keyword()) :: t()
  def auto_orient!(image, opts \\ []), do: image |> auto_orient(opts) |> unwrap()

  @doc """
  Encodes `image`.

  Options: `:format` (default: the image's), `:quality` (1..100, `:jpg` and
  `:webp`), `:progressive` (`:jpg`), `:optimize` (`:jpg`, `:png`), `:lossless`
  (`:webp`), `:compress_level` (0..9, `:png`), `:strip` (default `true`: drop EXIF,
  XMP and comments, keep the colour profile and the orientation; with `false`, EXIF
  too costly to write back is dropped with a warning, see docs/errors.md).

      iex> image = Mirage.from_bytes!(File.read!("samples/rocket.jpg"))
      iex> {:ok, png} = Mirage.to_bytes(image, format: :png, compress_level: 1)
      iex> Mirage.info!(png) |> Map.take([:format, :width, :height])
      %{format: :png, width: 640, height: 427}
  """
  @spec to_bytes(t(), keyword()) :: {:ok, binary()} | {:error, Mirage.Error.reason()}
  def to_bytes(image, opts \\ []) do
    check_image!(image)
    {transport, args} = request!(opts, Mirage.Options.allowed(:to_bytes), image, "to_bytes/2")
    call(transport, :to_bytes, image.resource, args)
  end

  @doc "Like `to_bytes/2`, but returns the bytes or raises `Mirage.Error`."
  @spec to_bytes!(t(), keyword()) :: binary()
  def to_bytes!(image, opts \\ []), do: image |> to_bytes(opts) |> unwrap()

  @doc """
  Frees the pixels and data `image` holds in the Python core now, on the
  transport that made it, instead of when that transport would (see its module
  doc). Returns `:ok`, also when called again.

  The VM only sees the struct, not the tens of megabytes a decoded photo may take
  in Python, so a process that reads many large images keeps them longer than
  memory would suggest; release each one when done. Using a released image (or a
  copy of its struct) raises `ArgumentError`; images made from it before stay
  valid.

      iex> image = Mirage.from_bytes!(File.read!("samples/rocket.jpg"))
      iex> {:ok, _bytes, thumb} = Mirage.resize(image, 64, 64)
      iex> Mirage.release(image)
      :ok
      iex> Mirage.release(image)
      :ok
      iex> {thumb.width, Mirage.resize!(thumb, 32, 32) |> elem(1) |> Map.get(:width)}
      {64, 32}
  """
  @spec release(t()) :: :ok
  def release(image) do
    check_image!(image)
    image.transport.release(image.resource)
  end

  @doc """
  Which formats this installation can read and write, and which are allowed to be
  decoded by default (`config :mirage, allowed_formats: [...]`), through the
  transport named by `transport:` (else the configured one). Raises `Mirage.Error`
  if the transport cannot answer (`:timeout`, `:worker_crashed`, `:overloaded`).

      iex> %{read: read, write: write, allowed: allowed} = Mirage.formats()
      iex> Enum.all?([:jpg, :png, :gif], &(&1 in read and &1 in write and &1 in allowed))
      true
  """
  @spec formats(keyword()) :: %{read: [format()], write: [format()], allowed: [format()]}
  def formats(opts \\ []) do
    {transport, args} = request!(opts, [], nil, "formats/1")

    case call(transport, :formats, nil, args) do
      {:ok, %{read: read, write: write}} ->
        %{read: read, write: write, allowed: Enum.filter(args.allowed_formats, &(&1 in read))}

      {:error, reason} ->
        raise Mirage.Error, reason: reason
    end
  end

  defp resample(op, source, width, height, opts, function) do
    check_integer!(:width, width, 1)
    check_integer!(:height, height, 1)
    image = if is_struct(source, __MODULE__), do: source
    if image, do: check_image!(image)
    {transport, args} = request!(opts, Mirage.Options.allowed(op), image, function)

    # A box that will be filled is refused here before any work; Python checks the
    # planned output size (which may differ for other fits) against the budget again.
    if Map.get(args, :upscale, true) and Map.get(args, :fit, :fill) in [:fill, :exact] and
         width * height > args.max_pixels do
      {:error, :too_many_pixels}
    else
      source = if image, do: image.resource, else: source
      args = Map.merge(args, %{width: width, height: height})

      with {:ok, bytes, made} <- call(transport, op, source, args) do
        {:ok, bytes, image(transport, made, byte_size(bytes))}
      end
    end
  end

  # An operation on a held image that makes a new held image.
  defp derive(transport, op, image, args) do
    with {:ok, made} <- call(transport, op, image.resource, args),
         do: {:ok, image(transport, made, nil)}
  end

  defp request!(opts, allowed, image, function) do
    {requested, args} = Mirage.Options.validate!(opts, allowed, function)
    {Mirage.Transport.pick!(requested, image, function), args}
  end

  defp call(transport, op, source, args) do
    case Mirage.Transport.result(op, transport.call(op, source, args)) do
      :released -> raise ArgumentError, "the image was released by Mirage.release/1"
      result -> result
    end
  end

  defp image(transport, {handle, format, width, height}, byte_size) do
    %__MODULE__{
      byte_size: byte_size,
      format: format,
      width: width,
      height: height,
      resource: handle,
      transport: transport
    }
  end

  # A struct is only as good as its fields: a transport of Mirage's and a handle that
  # transport could have made (a forged resource never reaches the core, where a
  # binary would pass for image bytes).
  defp check_image!(%__MODULE__{transport: transport, resource: resource}) do
    case Mirage.Transport.check_handle(transport, resource) do
      :ok ->
        :ok

      {:error, problem} ->
        raise ArgumentError, "not a live Mirage image: #{problem}"
    end
  end

  defp check_image!(%{__struct__: __MODULE__} = other),
    do: raise(ArgumentError, "not a live Mirage image: #{brief(other)} lacks its fields")

  defp check_image!(other),
    do: raise(ArgumentError, "expected a %Mirage{} image, got: #{brief(other)}")

  defp check_binary!(bytes) when is_binary(bytes), do: :ok

  defp check_binary!(other),
    do: raise(ArgumentError, "expected a binary, got: #{brief(other)}")

  # No image has a side longer than this (Pillow's sizes are C ints): anything larger
  # can address no pixel, and is refused here rather than carried to Python as a bignum.
  @max_side 2_147_483_647

  defp check_integer!(_name, value, min)
       when is_integer(value) and value >= min and value <= @max_side,
       do: :ok

  defp check_integer!(name, value, _min) when is_integer(value) and value > @max_side,
    do: raise(ArgumentError, "#{name} must be at most #{@max_side}, got: #{brief(value)}")

  defp check_integer!(name, value, min) do
    kind = if min == 0, do: "a non-negative integer", else: "a positive integer"
    raise ArgumentError, "#{name} must be #{kind}, got: #{brief(value)}"
  end

  defp unwrap({:ok, value}), do: value
  defp unwrap({:ok, bytes, image}), do: {bytes, image}
  defp unwrap({:error, reason}), do: raise(Mirage.Error, reason: reason)

  defp brief(term), do: inspect(term, limit: 5, printable_limit: 40)
end
