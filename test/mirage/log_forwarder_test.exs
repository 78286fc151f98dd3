defmodule Mirage.LogForwarderTest do
  use ExUnit.Case, async: false
  import ExUnit.CaptureLog

  alias Mirage.Test.Shared

  defp flush_forwarder do
    # The NIF sends lines to the forwarder; a call returns once earlier ones are logged.
    :sys.get_state(Mirage.LogForwarder)
    Logger.flush()
  end

  @tag :shared
  test "Python warnings reach Logger, not the VM's stdout" do
    # Pillow warns about this file's two acTL chunks while reading the header.
    bytes = Shared.read!("corpus/png/pillow/apng__chunk_multi_actl.png")

    log =
      capture_log(fn ->
        assert {:ok, %Mirage{format: :png}} = Mirage.from_bytes(bytes)
        flush_forwarder()
      end)

    assert log =~ "[warning]"
    assert log =~ "Invalid APNG"
  end

  test "ignores messages it does not understand" do
    send(Mirage.LogForwarder, {:mirage_log, :bogus, "x"})
    send(Mirage.LogForwarder, :unexpected)
    flush_forwarder()
    assert Process.alive?(Process.whereis(Mirage.LogForwarder))
  end
end
