defmodule Mirage.Conformance.CorpusTest do
  # Every file of ../shared/corpus through every transport: the VM must survive all of them
  # (decompression bombs and fuzz cases included) and answer only documented atoms.
  use Mirage.ConformanceCase

  conformance async: true do
    alias Mirage.Test.Shared

    @moduletag :shared

    defp run(bytes) do
      with {:ok, image} <- Mirage.from_bytes(bytes),
           {:ok, _bytes, resized} <- Mirage.resize(image, 32, 24) do
        {:ok, image, resized}
      end
    end

    test "PngSuite: x* files fail with a documented reason, the rest decode at their size" do
      files = Path.wildcard(Shared.path("corpus/pngsuite/**/*.png"))
      assert length(files) > 150

      for file <- files do
        name = Path.basename(file)

        case {String.starts_with?(name, "x"), run(File.read!(file))} do
          {true, {:error, reason}} ->
            assert reason in Mirage.Error.reasons(), name

          {true, {:ok, _, _}} ->
            flunk("#{name} is corrupt but decoded")

          {false, {:ok, image, resized}} ->
            assert {image.width, image.height} == ihdr_size(file), name
            assert {resized.format, resized.width, resized.height} == {:png, 32, 24}, name

          {false, {:error, reason}} ->
            flunk("#{name} should decode, got #{inspect(reason)}")
        end
      end
    end

    # The size as the file's IHDR chunk states it, read independently of Pillow.
    defp ihdr_size(file) do
      <<0x89, "PNG\r\n", 0x1A, "\n", _len::32, "IHDR", width::32, height::32, _::binary>> =
        File.read!(file)

      {width, height}
    end

    test "every other corpus file gets a documented answer and never crashes the VM" do
      rows = Enum.reject(Shared.manifest(), &String.starts_with?(&1["file"], "pngsuite/"))
      assert length(rows) > 300

      results =
        for row <- rows do
          result = run(Shared.read!("corpus/" <> row["file"]))

          case result do
            {:ok, _, _} -> :ok
            {:error, reason} -> assert reason in Mirage.Error.reasons(), row["file"]
          end

          {row["expected"], result}
        end

      # Files their suites call broken must not decode (see the Python suite for the
      # per-file list); a few lenient cases Pillow accepts are the only exceptions.
      failing = for {"fail", {:error, _}} <- results, do: 1
      passing = for {"fail", {:ok, _, _}} <- results, do: 1
      assert length(failing) > 10 * length(passing)
    end
  end
end
