defmodule Mirage.Test.BMP do
  @moduledoc false
  # Uncompressed BMP written and read by hand, so tests can make images with known
  # pixels and check the pixels Mirage produced, with no decoder of Mirage's own.

  @doc "A 24-bit BMP of `width` x `height`, pixel colour from `fun.(x, y)` -> {r, g, b}."
  def encode(width, height, fun) do
    row_size = div(24 * width + 31, 32) * 4
    padding = row_size - 3 * width

    # Bottom-up rows, BGR pixels, rows padded to 4 bytes.
    pixels =
      for y <- (height - 1)..0//-1, into: <<>> do
        row = for x <- 0..(width - 1), into: <<>>, do: bgr(fun.(x, y))
        row <> :binary.copy(<<0>>, padding)
      end

    header_size = 14 + 40

    <<"BM", header_size + byte_size(pixels)::little-32, 0::32, header_size::little-32,
      40::little-32, width::little-signed-32, height::little-signed-32, 1::little-16,
      24::little-16, 0::32, byte_size(pixels)::little-32, 2835::little-32, 2835::little-32, 0::32,
      0::32>> <> pixels
  end

  defp bgr({r, g, b}), do: <<b, g, r>>

  @doc """
  Decodes an uncompressed 8-bit (palette), 24- or 32-bit BMP into
  {width, height, fun(x, y) -> {r, g, b}}.
  """
  def decode(
        <<"BM", _size::little-32, _::32, offset::little-32, dib::little-32,
          width::little-signed-32, height::little-signed-32, _planes::little-16, bpp::little-16,
          _::binary>> = bmp
      )
      when bpp in [8, 24, 32] do
    row_size = div(bpp * width + 31, 32) * 4
    rows = abs(height)

    pixel = fn x, y ->
      row = if height > 0, do: rows - 1 - y, else: y
      start = offset + row * row_size

      if bpp == 8 do
        <<b, g, r, _>> = binary_part(bmp, 14 + dib + 4 * :binary.at(bmp, start + x), 4)
        {r, g, b}
      else
        <<b, g, r>> = binary_part(bmp, start + x * div(bpp, 8), 3)
        {r, g, b}
      end
    end

    {width, rows, pixel}
  end

  @doc "Mean absolute difference per channel (0..255) between two decoded images."
  def mean_difference({w, h, a}, {w, h, b}) do
    total =
      for x <- 0..(w - 1), y <- 0..(h - 1), reduce: 0 do
        acc ->
          {r1, g1, b1} = a.(x, y)
          {r2, g2, b2} = b.(x, y)
          acc + abs(r1 - r2) + abs(g1 - g2) + abs(b1 - b2)
      end

    total / (w * h * 3)
  end
end
