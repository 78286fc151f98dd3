defmodule Mix.Tasks.Mirage.Thumbnail do
  @shortdoc "Makes a thumbnail through Mirage"
  @moduledoc """
  Thumbnails an image and reports what it wrote.

      mix mirage.thumbnail [IN [OUT]] [--size WIDTHxHEIGHT] [--transport NAME]

  `IN` defaults to the bundled sample (`samples/rocket.jpg`), `OUT` to
  `thumbnail.EXT` in the current directory, `--size` to `256x256`. The thumbnail
  fills the size exactly (scaled to cover, centre cropped), in the input's format.
  `--transport` names one of `Mirage.Transport.transports/0` (default: the
  configured one, `:nif` unless set).
  """
  use Mix.Task

  @sample Path.expand("../../../samples/rocket.jpg", __DIR__)

  @impl true
  def run(args) do
    {opts, paths} = OptionParser.parse!(args, strict: [size: :string, transport: :string])
    {width, height} = parse_size(Keyword.get(opts, :size, "256x256"))
    via = parse_transport(Keyword.get(opts, :transport))
    Mix.Task.run("app.start")

    input = Enum.at(paths, 0, @sample)
    bytes = File.read!(input)
    started = System.monotonic_time(:microsecond)

    with {:ok, image} <- Mirage.from_bytes(bytes, via),
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

  defp parse_transport(nil), do: []

  defp parse_transport(text) do
    names = Map.keys(Mirage.Transport.transports())

    case Enum.find(names, &(Atom.to_string(&1) == text)) do
      nil -> Mix.raise("--transport must be one of #{inspect(names)}, got: #{text}")
      name -> [transport: name]
    end
  end

  defp parse_size(text) do
    case Regex.run(~r/^(\d+)x(\d+)$/, text) do
      [_, w, h] when w != "0" and h != "0" -> {String.to_integer(w), String.to_integer(h)}
      _ -> Mix.raise("--size must look like 256x256, got: #{text}")
    end
  end
end
