defmodule Mix.Tasks.Mirage.Thumbnail do
  @shortdoc "Makes a thumbnail through the Mirage NIF"
  @moduledoc """
  Thumbnails an image through the NIF and reports what it wrote.

      mix mirage.thumbnail [IN [OUT]] [--size WIDTHxHEIGHT]

  `IN` defaults to the bundled sample (`samples/rocket.jpg`), `OUT` to
  `thumbnail.EXT` in the current directory, `--size` to `256x256`. The thumbnail
  fills the size exactly (scaled to cover, centre cropped), in the input's format.
  """
  use Mix.Task

  @sample Path.expand("../../../samples/rocket.jpg", __DIR__)

  @impl true
  def run(args) do
    {opts, paths} = OptionParser.parse!(args, strict: [size: :string])
    {width, height} = parse_size(Keyword.get(opts, :size, "256x256"))
    Mix.Task.run("app.start")

    input = Enum.at(paths, 0, @sample)
    bytes = File.read!(input)
    started = System.monotonic_time(:microsecond)

    with {:ok, image} <- Mirage.from_bytes(bytes),
         {:ok, thumb_bytes, thumb} <- Mirage.resize(image, width, height) do
      elapsed_ms = (System.monotonic_time(:microsecond) - started) / 1000
      output = Enum.at(paths, 1, "thumbnail.#{thumb.format}")
      File.write!(output, thumb_bytes)

      Mix.shell().info(
        "#{input}: #{image.format} #{image.width}x#{image.height}, #{image.byte_size} bytes\n" <>
          "wrote #{output}: #{thumb.format} #{thumb.width}x#{thumb.height}, " <>
          "#{thumb.byte_size} bytes (#{:erlang.float_to_binary(elapsed_ms, decimals: 1)} ms)"
      )
    else
      {:error, reason} ->
        Mix.raise("#{input}: #{Exception.message(%Mirage.Error{reason: reason})}")
    end
  end

  defp parse_size(text) do
    case Regex.run(~r/^(\d+)x(\d+)$/, text) do
      [_, w, h] when w != "0" and h != "0" -> {String.to_integer(w), String.to_integer(h)}
      _ -> Mix.raise("--size must look like 256x256, got: #{text}")
    end
  end
end
