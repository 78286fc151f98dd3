defmodule Mirage.Test.Wait do
  @moduledoc false
  # Polls for a condition that another process or an OS process brings about.

  @doc "Calls `fun` every 10 ms until it returns a truthy value (returned), for `ms`."
  @spec until((() -> term()), non_neg_integer()) :: term()
  def until(fun, ms \\ 5_000) do
    cond do
      value = fun.() -> value
      ms <= 0 -> raise ExUnit.AssertionError, message: "condition not met in time"
      true -> Process.sleep(10) && until(fun, ms - 10)
    end
  end
end
