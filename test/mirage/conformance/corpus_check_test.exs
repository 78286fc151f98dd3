defmodule Mirage.Conformance.CorpusCheckTest do
  # Every operation of Mirage.Check (info, from_bytes + resize, thumbnail with four
  # fits and formats, auto_orient + to_bytes) over ../shared/corpus, each file with a
  # deadline, answers checked against MANIFEST.tsv's `expected` column.
  #
  # A CI-sized subset runs always; the whole corpus (decompression bombs included)
  # with `mix test --include corpus_full`. The per-file table is printed when a check
  # fails, or always with MIRAGE_CORPUS_REPORT=1.
  use Mirage.ConformanceCase

  conformance async: true do
    alias Mirage.Test.Shared

    @moduletag :shared
    @deadline 30_000

    # Files whose answer differs from what their suite states, and why (Pillow is
    # lenient or strict where the suite's reference decoder is not). A new deviation
    # fails the suite; one that disappears is only reported.
    @known %{
      "png/pillow/apng__chunk_no_fdat.png" => "Pillow refuses the animation, the suite plays it",
      "png/pillow/apng__chunk_repeat_fctl.png" => "Pillow refuses the animation",
      "png/pillow/apng__sequence_fdat_fctl.png" => "Pillow refuses the animation",
      "png/pillow/apng__sequence_gap.png" => "Pillow refuses the animation",
      "png/pillow/apng__sequence_reorder.png" => "Pillow refuses the animation",
      "png/pillow/apng__sequence_reorder_chunk.png" => "Pillow refuses the animation",
      "png/pillow/apng__sequence_repeat.png" => "Pillow refuses the animation",
      "png/pillow/apng__sequence_repeat_chunk.png" => "Pillow refuses the animation",
      "png/pillow/apng__sequence_start.png" => "Pillow refuses the animation",
      "png/pillow/apng__syntax_num_frames_high.png" => "fewer frames than it declares",
      "bmp/pillow/clipboard.dib" => "a bare DIB is not a BMP file",
      "bmp/image-rs/bmp__images__V3_A4_R4_G4_B4.bmp" => "unsupported_feature: bitfields",
      "bmp/image-rs/bmp__images__V3_A4_R4_G4_B4_Top_Down.bmp" => "unsupported_feature: bitfields",
      "bmp/image-rs/bmp__images__V3_X4_R4_G4_B4.bmp" => "unsupported_feature: bitfields",
      "bmp/image-rs/bmp__images__V3_X4_R4_G4_B4_Top_Down.bmp" => "unsupported_feature: bitfields",
      "bmp/image-rs/bmp__images__pal2color.bmp" => "unsupported_feature: 2 bits a pixel",
      "bmp/image-rs/bmp__images__pal4rlecut.bmp" => "cut-off RLE: image-rs shows what is there",
      "bmp/image-rs/bmp__images__rgb24rle24.bmp" => "unsupported_feature: RLE24",
      "bmp/image-rs/bmp__images__rgba16-1924.bmp" => "unsupported_feature: bitfields",
      "bmp/image-rs/bmp__images__rgba32-61754.bmp" => "unsupported_feature: bitfields",
      "tiff/image-rs/tiff__testsuite__rgb32f_bw.tiff" => "unsupported_feature: float samples",
      "tiff/image-rs/tiff__testsuite__rgb32f_color.tiff" => "unsupported_feature: float samples",
      "synthetic/png_65535x1_rgba.png" =>
        "cover:jpg of a 65535x1 strip into 64x48 asks for 3145680x48: over the budget"
    }

    # The always-on subset: every sixth row outside hostile/, plus the rows this issue's
    # fixes are about.
    @always [
      "gif/pillow/test_extents.gif",
      "tiff/pillow/lab.tif",
      "hostile/pillow/zero_width.gif",
      "synthetic/one_byte.bin",
      "bmp/pillow/bmp__q__pal2.bmp"
    ]

    defp rows(:subset) do
      Shared.manifest()
      |> Enum.reject(&String.starts_with?(&1["file"], "hostile/"))
      |> Enum.take_every(6)
      |> Kernel.++(Enum.filter(Shared.manifest(), &(&1["file"] in @always)))
      |> Enum.uniq_by(& &1["file"])
    end

    defp rows(:full), do: Shared.manifest()

    @doc false
    # Why `answers` do not match `expected`, or nil when they do.
    def deviation(expected, answers) do
      findings =
        for {op, a} <- answers, Mirage.Check.finding?(a), do: "#{op}: #{Mirage.Check.label(a)}"

      cond do
        findings != [] ->
          "finding: " <> Enum.join(findings, ", ")

        expected == "ok" and Mirage.Check.verdict(answers) != :ok ->
          "expected ok"

        expected == "fail" and Mirage.Check.verdict(answers) == :ok ->
          "expected a failure"

        expected == "ok(frame0)" and List.keyfind(answers, "cover:jpg", 0) != {"cover:jpg", :ok} ->
          "frame 0 should decode"

        true ->
          nil
      end
    end

    defp check(kind, transport) do
      results =
        for row <- rows(kind) do
          result =
            Mirage.Check.file(Shared.path("corpus/" <> row["file"]),
              deadline: @deadline,
              transport: transport
            )

          {row, result, deviation(row["expected"], result.answers)}
        end

      report = report(results)
      if System.get_env("MIRAGE_CORPUS_REPORT") in ["1", "true"], do: IO.puts(report)

      new =
        for {row, _r, why} <- results,
            why != nil,
            not Map.has_key?(@known, row["file"]),
            do: {row["file"], why}

      findings = for {row, _r, "finding" <> _ = why} <- results, do: {row["file"], why}

      assert findings == [], report
      assert new == [], report
      results
    end

    defp report(results) do
      rows =
        for {row, result, why} <- results do
          answers =
            Enum.map(Mirage.Check.operations(), fn op ->
              Mirage.Check.label(elem(List.keyfind(result.answers, op, 0), 1))
            end)

          [row["file"], row["expected"] | answers] ++ [Integer.to_string(result.ms), why || ""]
        end

      table =
        Mirage.Check.table(
          ["file", "expected" | Mirage.Check.operations()] ++ ["ms", "deviation"],
          rows
        )

      summary = Mirage.Check.summary(Enum.map(results, &elem(&1, 1)))
      table <> "\n\n" <> summary
    end

    test "a CI-sized subset of the corpus: every answer as MANIFEST expects", %{transport: t} do
      results = check(:subset, t)
      assert length(results) > 100
    end

    @tag :corpus_full
    @tag timeout: :infinity
    test "the whole corpus: every answer as MANIFEST expects", %{transport: t} do
      results = check(:full, t)
      assert length(results) == length(Shared.manifest())
    end

    test "deviation/2 against the expected column" do
      ok = for op <- Mirage.Check.operations(), do: {op, :ok}
      failed = for op <- Mirage.Check.operations(), do: {op, {:error, :decode_failed}}
      assert deviation("ok", ok) == nil
      assert deviation("fail", failed) == nil
      assert deviation("fail", ok) == "expected a failure"
      assert deviation("ok", failed) == "expected ok"
      assert deviation("nocrash", failed) == nil

      assert deviation("nocrash", List.keyreplace(ok, "info", 0, {"info", :deadline})) =~
               "finding"

      assert deviation("?", List.keyreplace(ok, "info", 0, {"info", {:error, :internal_error}})) =~
               "finding"

      assert deviation("ok(frame0)", List.keyreplace(failed, "cover:jpg", 0, {"cover:jpg", :ok})) ==
               nil
    end
  end
end
