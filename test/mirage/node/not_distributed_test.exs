defmodule Mirage.Node.NotDistributedTest do
  # A VM without a node name: the node transport answers :not_distributed and the
  # log says how to start one. Run in a child VM, since this one is distributed.
  use ExUnit.Case, async: true

  @script """
  Application.put_env(:mirage, :node, spawn: 1)
  {:ok, _} = Application.ensure_all_started(:mirage)
  IO.inspect(Node.alive?(), label: "alive")
  IO.inspect(Mirage.info(File.read!("samples/rocket.jpg"), transport: :node), label: "info")
  IO.inspect(Mirage.info("x", transport: :node), label: "again")
  IO.inspect(Mirage.Node.workers(), label: "workers")
  IO.inspect(Mirage.Error.exception(reason: :not_distributed) |> Exception.message(), label: "message")
  """

  test "calls answer {:error, :not_distributed} and the log says how to distribute the VM" do
    ebin = :mirage |> :code.lib_dir() |> Path.join("ebin")
    {output, 0} = System.cmd("elixir", ["-pa", ebin, "-e", @script], stderr_to_stdout: true)

    assert output =~ "alive: false"
    assert output =~ "info: {:error, :not_distributed}"
    assert output =~ "workers: []"
    assert output =~ "message: \"not_distributed: the node transport needs a distributed VM"
    assert output =~ "again: {:error, :not_distributed}"
    # Said once, not at every call.
    assert length(String.split(output, "this VM is not distributed")) == 2
    assert output =~ "--sname"
    assert output =~ "Node.start"
  end
end
