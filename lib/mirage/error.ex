defmodule Mirage.Error do
  # Core reasons: raised by the Python core, same order as mirage.errors.REASONS (the
  # NIF's atom table index); test/mirage/tables_test.exs fails when the two drift.
  @core [
    unsupported_image_format:
      "the bytes are not an image in an allowed format (also empty input)",
    truncated_image: "the data ends before the header or the pixel data is complete",
    too_many_pixels:
      "the source or the requested size exceeds the pixel budget " <>
        "(`config :mirage, max_pixels: n`, default 50 000 000), or memory ran out",
    too_complex:
      "the file's structure asks for more work than the limits allow: more JPEG scans " <>
        "than `:max_scans` (default 100), TIFF strips or tiles beyond what the size " <>
        "needs or too small for the budget, an RLE BMP too large for the budget at 8 " <>
        "per pixel, or more markers, chunks, sub-blocks, TIFF directory entries or tag " <>
        "values, frames or pages than a header read walks",
    invalid_dimensions: "the image declares a zero width or height",
    decode_failed: "the header was readable but the image data is corrupt",
    encode_failed: "the result could not be written in the source format",
    unsupported_feature:
      "a valid image in a variant of its format this build cannot decode " <>
        "(e.g. BMP bitfields, 2-bit or RLE24 BMP, 12-bit JPEG, 32-bit float TIFF)",
    internal_error: "an unexpected failure inside Mirage or Pillow (a bug; details go to Logger)"
  ]

  # Transport reasons: owned here; the NIF never returns them.
  @transport [
    timeout: "the call's deadline (the `:timeout` option) passed before the core answered",
    worker_crashed: "the process or node serving the call died before answering",
    overloaded: "the transport's queue, or the core's cap on held images, is full",
    not_distributed:
      "the node transport needs a distributed VM (a node name, e.g. `elixir --sname app`, " <>
        "or `Node.start/2`)"
  ]

  @descriptions @core ++ @transport

  @moduledoc """
  Raised by the bang functions (`Mirage.from_bytes!/1`, `Mirage.resize!/3`); the
  other functions return `{:error, reason}` with the same reason.

  `reason` is always one of a closed set of atoms, the same for every transport.

  Reasons from the Python core (`core_reasons/0`, the same as
  `mirage.errors.REASONS`, in that order):

  #{Enum.map_join(@core, "\n", fn {reason, text} -> "  * `#{inspect(reason)}`: #{text}" end)}

  Reasons from a transport (`transport_reasons/0`; the NIF never returns them, the
  Port and Node transports may):

  #{Enum.map_join(@transport, "\n", fn {reason, text} -> "  * `#{inspect(reason)}`: #{text}" end)}
  """

  @typedoc "A reason from the Python core, as `core_reasons/0` lists them."
  @type core_reason ::
          :unsupported_image_format
          | :truncated_image
          | :too_many_pixels
          | :too_complex
          | :invalid_dimensions
          | :decode_failed
          | :encode_failed
          | :unsupported_feature
          | :internal_error

  @typedoc "A reason from a transport, as `transport_reasons/0` lists them."
  @type transport_reason :: :timeout | :worker_crashed | :overloaded | :not_distributed

  @type reason :: core_reason() | transport_reason()

  @type t :: %__MODULE__{reason: reason()}

  defexception [:reason]

  @impl true
  def message(%__MODULE__{reason: reason}) do
    "#{reason}: #{Keyword.get(@descriptions, reason, "unknown reason")}"
  end

  @doc """
  Every reason a function may return: `core_reasons/0` ++ `transport_reasons/0`.

      iex> :truncated_image in Mirage.Error.reasons()
      true
      iex> :timeout in Mirage.Error.reasons()
      true
  """
  @spec reasons() :: [reason()]
  def reasons, do: Keyword.keys(@descriptions)

  @doc "The reasons the Python core raises, in `mirage.errors.REASONS` order."
  @spec core_reasons() :: [core_reason()]
  def core_reasons, do: Keyword.keys(@core)

  @doc "The reasons a transport adds: `[:timeout, :worker_crashed, :overloaded, :not_distributed]`."
  @spec transport_reasons() :: [transport_reason()]
  def transport_reasons, do: Keyword.keys(@transport)
end
