defmodule Mirage.Options do
  @moduledoc """
  Validates the options of every `Mirage` function, once, before any transport is
  involved. An unknown option or a bad value raises `ArgumentError` naming it.

  Every function also takes:
    * `:transport` - which transport runs the call (`:nif`, the default, see
      `Mirage.Transport.transports/0`); default `config :mirage, transport: name`.
      An operation on an image always goes to the transport that made it.
    * `:timeout` - how long the call may take, in milliseconds, or `:infinity`
      (default `config :mirage, timeout: ms`, else 30 000). A transport that runs
      the core elsewhere answers `{:error, :timeout}` when it passes; the core
      stops cooperatively where it can.

  The result is one plain map, the same for every transport, that always carries the
  limits `:max_pixels`, `:max_scans` and `:allowed_formats` (from the call, else the application
  environment, else the defaults) and `:timeout`. The transport is returned beside
  it, never inside: no transport sees `:transport`.
  """

  # Owned by Python (mirage.formats.FORMATS, mirage.DEFAULT_MAX_PIXELS);
  # test/mirage/tables_test.exs fails when these drift.
  @formats [:jpg, :png, :gif, :webp, :bmp, :tiff]
  @default_max_pixels 50_000_000
  # mirage.survey.DEFAULT_MAX_SCANS: libjpeg's progressive script writes 10 scans.
  @default_max_scans 100
  @default_timeout 30_000
  # Erlang's longest timeout (receive ... after, timers): about 49 days.
  @max_timeout 4_294_967_295
  # Options every function takes, whatever its own.
  @common [:max_pixels, :max_scans, :allowed_formats, :transport, :timeout]

  # Each operation's own options (this module owns the names and their values; the
  # Python core's keyword arguments are checked against them by tables_test.exs).
  @thumbnail [
    :fit,
    :gravity,
    :filter,
    :upscale,
    :auto_orient,
    :format,
    :quality,
    :strip,
    :frames,
    :threads
  ]
  # The most threads one call may ask for (`:auto`: the cores).
  @max_threads 256
  @operations %{
    from_bytes: [],
    info: [],
    thumbnail: @thumbnail,
    resize: @thumbnail,
    crop: [],
    rotate: [:background],
    flip: [],
    auto_orient: [],
    to_bytes: [:format, :quality, :progressive, :optimize, :lossless, :compress_level, :strip],
    formats: []
  }

  @fits [:fill, :contain, :cover, :exact]
  @filters [:nearest, :bilinear, :bicubic, :lanczos]
  @frames [:all, :first]
  @booleans [:upscale, :auto_orient, :strip, :progressive, :optimize, :lossless]

  @gravities [
    :center,
    :north,
    :south,
    :east,
    :west,
    :north_east,
    :north_west,
    :south_east,
    :south_west
  ]

  @doc "Every format Mirage knows (what a build can really read: `Mirage.formats/1`)."
  @spec formats() :: [Mirage.format()]
  def formats, do: @formats

  @doc """
  The options of operation `op` (a `t:Mirage.Transport.op/0`), besides the common
  ones.

      iex> Mirage.Options.allowed(:rotate)
      [:background]
  """
  @spec allowed(Mirage.Transport.op()) :: [atom()]
  def allowed(op), do: Map.fetch!(@operations, op)

  @doc false
  # What each option takes, for the drift test against the Python core.
  @spec types() :: %{atom() => term()}
  def types do
    choices = %{
      fit: @fits,
      gravity: @gravities,
      filter: @filters,
      frames: @frames,
      format: @formats
    }

    Map.new(choices, fn {key, values} -> {key, {:one_of, values}} end)
    |> Map.merge(Map.new(@booleans, &{&1, :boolean}))
    |> Map.merge(%{
      quality: {:integer, 1..100},
      compress_level: {:integer, 0..9},
      max_pixels: {:integer, 1..@default_max_pixels},
      max_scans: {:integer, 1..@default_max_scans},
      allowed_formats: {:list_of, @formats},
      background: :color,
      threads: :threads,
      timeout: :timeout,
      transport: :transport
    })
  end

  @doc "The default pixel budget."
  @spec default_max_pixels() :: pos_integer()
  def default_max_pixels, do: @default_max_pixels

  @doc "The default limit on JPEG scans (each one a pass over the whole image)."
  @spec default_max_scans() :: pos_integer()
  def default_max_scans, do: @default_max_scans

  @doc """
  Checks `opts` (a keyword list) against the options `allowed` for `function`
  (the common ones, `:max_pixels`, `:max_scans`, `:allowed_formats`, `:transport` and `:timeout`,
  are always allowed) and returns `{transport, args}`: the module of the transport
  the call named (`nil` when it named none) and the rest as a map with the limits
  and the timeout filled in.

      iex> {nil, args} = Mirage.Options.validate!([quality: 90], [:quality], "to_bytes/2")
      iex> {args.quality, args.timeout}
      {90, 30000}
      iex> Mirage.Options.validate!([transport: :nif], [], "info/2") |> elem(0)
      Mirage.Transport.NIF
      iex> Mirage.Options.validate!([qualty: 90], [:quality], "to_bytes/2")
      ** (ArgumentError) unknown option :qualty for Mirage.to_bytes/2; expected one of: [:quality, :max_pixels, :max_scans, :allowed_formats, :transport, :timeout]
  """
  @spec validate!(keyword(), [atom()], String.t()) :: {module() | nil, map()}
  def validate!(opts, allowed, function) do
    allowed = allowed ++ @common

    unless keyword?(opts) do
      raise ArgumentError,
            "options for Mirage.#{function} must be a keyword list, got: #{inspect(opts, limit: 5)}"
    end

    checked =
      Map.new(opts, fn {key, value} ->
        unless key in allowed do
          raise ArgumentError,
                "unknown option #{inspect(key)} for Mirage.#{function}; " <>
                  "expected one of: #{inspect(allowed)}"
        end

        {key, check!(key, value)}
      end)

    {transport, args} = Map.pop(checked, :transport)
    {transport, Map.merge(defaults(), args)}
  end

  defp keyword?([{key, _value} | rest]) when is_atom(key), do: keyword?(rest)
  defp keyword?([]), do: true
  defp keyword?(_other), do: false

  defp defaults do
    %{
      max_pixels:
        check!(:max_pixels, Application.get_env(:mirage, :max_pixels, @default_max_pixels)),
      max_scans: check!(:max_scans, Application.get_env(:mirage, :max_scans, @default_max_scans)),
      allowed_formats:
        check!(:allowed_formats, Application.get_env(:mirage, :allowed_formats, @formats)),
      timeout: check!(:timeout, Application.get_env(:mirage, :timeout, @default_timeout))
    }
  end

  @doc false
  @spec check!(atom(), term()) :: term()
  def check!(:fit, v) when v in @fits, do: v
  def check!(:gravity, v) when v in @gravities, do: v

  def check!(:gravity, {x, y})
      when is_number(x) and is_number(y) and x >= 0 and x <= 1 and y >= 0 and y <= 1,
      do: {x / 1, y / 1}

  def check!(:filter, v) when v in @filters, do: v
  def check!(:format, v) when v in @formats, do: v
  def check!(:frames, v) when v in @frames, do: v
  def check!(:quality, v) when is_integer(v) and v in 1..100, do: v
  def check!(:compress_level, v) when is_integer(v) and v in 0..9, do: v
  def check!(:max_pixels, v) when is_integer(v) and v > 0, do: v

  def check!(:timeout, v) when (is_integer(v) and v > 0 and v <= @max_timeout) or v == :infinity,
    do: v

  def check!(:max_scans, v) when is_integer(v) and v > 0, do: v
  def check!(:threads, :auto), do: :auto
  def check!(:threads, v) when is_integer(v) and v in 1..@max_threads, do: v

  def check!(:transport, v) do
    case Mirage.Transport.module(v) do
      {:ok, module} -> module
      :error -> invalid!(:transport, v)
    end
  end

  def check!(key, v) when key in @booleans and is_boolean(v), do: v

  def check!(:allowed_formats, v) when is_list(v) and v != [] do
    if formats?(v), do: Enum.uniq(v), else: invalid!(:allowed_formats, v)
  end

  def check!(:background, {r, g, b} = v) when r in 0..255 and g in 0..255 and b in 0..255, do: v

  def check!(:background, {r, g, b, a} = v)
      when r in 0..255 and g in 0..255 and b in 0..255 and a in 0..255,
      do: v

  def check!(key, v), do: invalid!(key, v)

  # A proper list of known formats (an improper one is a bad value, not a crash).
  defp formats?([format | rest]), do: format in @formats and formats?(rest)
  defp formats?([]), do: true
  defp formats?(_tail), do: false

  @expected %{
    fit: "one of #{inspect(@fits)}",
    gravity: "one of #{inspect(@gravities)} or {x, y} with both in 0..1",
    filter: "one of #{inspect(@filters)}",
    format: "one of #{inspect(@formats)}",
    frames: ":all or :first",
    quality: "an integer in 1..100",
    compress_level: "an integer in 0..9",
    max_pixels: "a positive integer",
    max_scans: "a positive integer",
    threads: ":auto or an integer in 1..#{@max_threads}",
    timeout: "a positive integer of milliseconds up to #{@max_timeout}, or :infinity",
    transport: "a transport",
    upscale: "a boolean",
    auto_orient: "a boolean",
    strip: "a boolean",
    progressive: "a boolean",
    optimize: "a boolean",
    lossless: "a boolean",
    allowed_formats: "a non-empty list of #{inspect(@formats)}",
    background: "{r, g, b} or {r, g, b, a} with integers in 0..255"
  }

  @doc """
  The option names `Mirage` knows, each with the values it takes (as the
  `ArgumentError` for a bad value describes them).
  """
  @spec names() :: %{atom() => String.t()}
  def names, do: @expected

  defp invalid!(key, value) do
    expected =
      if key == :transport, do: Mirage.Transport.expected(), else: Map.fetch!(@expected, key)

    raise ArgumentError,
          "invalid value for option #{inspect(key)}: #{inspect(value, limit: 5)} (expected #{expected})"
  end
end
