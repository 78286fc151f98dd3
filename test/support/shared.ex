defmodule Mirage.Test.Shared do
  @moduledoc false
  # Paths into ../shared, the read-only corpus beside the repository, or
  # $MIRAGE_SHARED (a worktree elsewhere).

  @root Path.expand("../../../shared", __DIR__)

  def root, do: System.get_env("MIRAGE_SHARED") || @root
  def path(relative), do: Path.join(root(), relative)
  def read!(relative), do: File.read!(path(relative))

  @doc "MANIFEST.tsv rows as maps keyed by the header's column names."
  def manifest do
    [header | rows] =
      path("corpus/MANIFEST.tsv") |> File.read!() |> String.split("\n", trim: true)

    keys = String.split(header, "\t")
    Enum.map(rows, fn row -> Map.new(Enum.zip(keys, String.split(row, "\t"))) end)
  end
end
