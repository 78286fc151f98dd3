defmodule Mirage.DocTest do
  # The examples in the docs, on the configured transport (:nif by default).
  use ExUnit.Case, async: true
  doctest Mirage
end
