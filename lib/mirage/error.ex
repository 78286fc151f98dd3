defmodule Mirage.Error do
  @descriptions [
    unsupported_image_format:
      "the bytes are not an image in an allowed format (also empty input)",
    truncated_image: "the data ends before the header or the pixel data is complete",
    too_many_pixels:
      "the source or the requested size exceeds the pixel budget " <>
        "(`config :mirage, max_pixels: n`, default 50 000 000), or memory ran out",
    invalid_dimensions: "the image declares a zero width or height",
    decode_failed: "the header was readable but the image data is corrupt",
    encode_failed: "the result could not be written in the source format",
    internal_error: "an unexpected failure inside Mirage or Pillow (a bug; details go to Logger)"
  ]

  @moduledoc """
  Raised by the bang functions (`Mirage.from_bytes!/1`, `Mirage.resize!/3`); the
  other functions return `{:error, reason}` with the same reason.

  `reason` is always one of a closed set of atoms, the same for every transport and
  mirrored by `mirage.errors.REASONS` in the Python package:

  #{Enum.map_join(@descriptions, "\n", fn {reason, text} -> "  * `#{inspect(reason)}`: #{text}" end)}
  """

  @type reason ::
          :unsupported_image_format
          | :truncated_image
          | :too_many_pixels
          | :invalid_dimensions
          | :decode_failed
          | :encode_failed
          | :internal_error

  @type t :: %__MODULE__{reason: reason()}

  defexception [:reason]

  @impl true
  def message(%__MODULE__{reason: reason}) do
    "#{reason}: #{Keyword.get(@descriptions, reason, "unknown reason")}"
  end

  @doc """
  Every reason an operation may return.

      iex> :truncated_image in Mirage.Error.reasons()
      true
  """
  @spec reasons() :: [reason()]
  def reasons, do: Keyword.keys(@descriptions)
end
