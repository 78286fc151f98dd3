defmodule Mirage.Conformance.ReasonsTest do
  # Precise reasons through the public API (the Python table is tests/test_reasons.py):
  # for each reason bad data can produce, corpus files that must produce it: the shared
  # corpus's, and the project's crafted ones (test/fixtures/crafted, made by
  # tools/crafted.py) for the reasons the shared corpus has fewer than three of.
  use Mirage.ConformanceCase

  conformance async: true do
    alias Mirage.Test.Shared

    @crafted_dir "test/fixtures/crafted"
    @external_resource Path.join(@crafted_dir, "MANIFEST.tsv")
    # Reasons by name, so that a manifest names only reasons that exist.
    @reasons Map.new(Mirage.Error.core_reasons(), &{Atom.to_string(&1), &1})
    @crafted (for line <- tl(String.split(File.read!(@external_resource), "\n", trim: true)) do
                [file, reason, _how] = String.split(line, "\t")
                {file, Map.fetch!(@reasons, reason)}
              end)

    @table %{
      unsupported_image_format:
        ~w(synthetic/empty.bin synthetic/one_byte.bin synthetic/random_4096.bin),
      truncated_image:
        ~w(synthetic/png_signature_only.png synthetic/jpeg_soi_only.jpg synthetic/testorig_trunc_50pct.jpg bmp/pillow/bmp__b__shortfile.bmp),
      too_many_pixels:
        ~w(bmp/pillow/bmp__b__reallybig.bmp bmp/image-rs/bad__bmp__Bad_height.bmp synthetic/jpeg_sof_9000x9000_tiny.jpg),
      invalid_dimensions: ~w(hostile/pillow/zero_width.gif),
      decode_failed:
        ~w(pngsuite/pngsuite/xc1n0g08.png pngsuite/pngsuite/xcsn0g01.png bmp/pillow/bmp__b__badbitcount.bmp),
      unsupported_feature:
        ~w(bmp/pillow/bmp__q__pal2.bmp bmp/image-rs/bmp__images__rgb24rle24.bmp bmp/pillow/bmp__g__rgb32bf.bmp tiff/image-rs/tiff__testsuite__rgb32f_color.tiff jpeg/libjpeg-turbo/monkey12.jpg)
    }

    # The first failing step's reason: reading the header, then decoding.
    defp reason(bytes) do
      with {:ok, image} <- Mirage.from_bytes(bytes),
           {:ok, _bytes, _thumb} <- Mirage.thumbnail(image, 32, 32, format: :png) do
        :ok
      else
        {:error, reason} -> reason
      end
    end

    @tag :shared
    test "each reason from real files that must give it" do
      wrong =
        for {expected, files} <- @table,
            file <- files,
            (got = reason(Shared.read!("corpus/" <> file))) != expected,
            do: {file, expected, got}

      assert wrong == []
    end

    test "each reason from the crafted files that must give it" do
      wrong =
        for {file, expected} <- @crafted,
            (got = reason(File.read!(Path.join(@crafted_dir, file)))) != expected,
            do: {file, expected, got}

      assert wrong == []
    end

    test "three files or more for every reason data can produce" do
      from_data = Mirage.Error.core_reasons() -- [:encode_failed, :internal_error]
      counts = Enum.frequencies(Enum.map(@crafted, &elem(&1, 1)))

      shared = Map.new(@table, fn {reason, files} -> {reason, length(files)} end)
      counts = Map.merge(counts, shared, fn _reason, a, b -> a + b end)

      assert Enum.sort(Map.keys(counts)) == Enum.sort(from_data)
      assert Enum.filter(counts, fn {_reason, n} -> n < 3 end) == []
    end

    test "a few bytes identify no format; a zero-sized header is invalid_dimensions" do
      for bytes <- [<<0xFF>>, <<0x89, "PN">>, "GIF8", <<0>>] do
        assert Mirage.from_bytes(bytes) == {:error, :unsupported_image_format}, inspect(bytes)
      end

      png =
        File.read!("samples/rocket.jpg")
        |> then(&Mirage.thumbnail!(&1, 4, 4, format: :png))
        |> elem(0)

      <<head::binary-16, _w::32, _h::32, rest::binary>> = png
      # A zero width (the IHDR checksum is then wrong, but the size is read first).
      assert Mirage.from_bytes(<<head::binary, 0::32, 4::32, rest::binary>>) ==
               {:error, :invalid_dimensions}
    end

    test "unsupported_feature is documented" do
      assert :unsupported_feature in Mirage.Error.reasons()
      assert Exception.message(%Mirage.Error{reason: :unsupported_feature}) =~ "cannot decode"
    end
  end
end
