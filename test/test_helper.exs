# Tests tagged :shared read ../shared (the corpus and benchmark images beside the repo),
# or $MIRAGE_SHARED.
shared = Mirage.Test.Shared.root()

exclude =
  if File.dir?(Path.join(shared, "corpus")) do
    []
  else
    IO.puts("Skipping tests tagged :shared: #{shared} is not present (plain checkout).")
    [:shared]
  end

# :corpus_full runs every corpus file (decompression bombs included): mix test
# --include corpus_full.
# capture_log: Python warnings about corrupt files show only for failing tests.
ExUnit.start(exclude: [:corpus_full | exclude], capture_log: true)
