defmodule Mirage.NIF.LoaderTest do
  use ExUnit.Case, async: true

  # A fresh VM per case: Python can be started only once per OS process. The script
  # runs with the project's code paths, the application not started unless it says so.
  defp in_vm(script, env \\ []) do
    System.cmd("mix", ["run", "--no-compile", "--no-start", "-e", script],
      env: [{"MIX_ENV", "test"} | env],
      stderr_to_stdout: true
    )
  end

  @call_nif """
  IO.puts("load=" <> inspect(Mirage.NIF.load()))

  try do
    Mirage.info(File.read!("samples/rocket.jpg"), transport: :nif)
  rescue
    error -> IO.puts("raised=" <> Exception.message(error))
  end

  IO.puts("vm_alive=true")
  """

  # Whether libpython and the NIF are mapped into this VM's OS process.
  @mapped """
  mapped = fn ->
    maps = File.read!("/proc/\#{System.pid()}/maps")
    {maps =~ "libpython", maps =~ "mirage_nif.so"}
  end
  """

  test "a missing interpreter fails the load with a readable reason, not the VM" do
    {out, 0} = in_vm(@call_nif, [{"MIRAGE_PYTHON", "/nonexistent/bin/python"}])
    assert out =~ ~s(Python executable "/nonexistent/bin/python" does not exist)
    assert out =~ "load={:error, {:mirage_nif,"
    assert out =~ "raised=mirage: the NIF was not loaded"
    assert out =~ "vm_alive=true"
  end

  @other_python Mirage.Test.OtherPython.find()
  if @other_python == nil,
    do: @tag(skip: "no Python 3 of another minor version on this machine")

  test "MIRAGE_PYTHON of another minor version: refused with a message to rebuild, nothing loaded" do
    script = @mapped <> @call_nif <> ~s[IO.puts("mapped=" <> inspect(mapped.()))]
    {out, 0} = in_vm(script, [{"MIRAGE_PYTHON", @other_python}])
    assert out =~ "but Mirage was built with Python"
    assert out =~ "rebuild with that interpreter"
    assert out =~ "raised=mirage: the NIF was not loaded"
    # Neither the NIF nor any libpython was mapped: no other version's site-packages used.
    assert out =~ "mapped={false, false}"
    assert out =~ "vm_alive=true"
  end

  test "an interpreter without the Python side fails the load with a readable reason" do
    # A virtualenv of the same Python without Pillow: the interpreter starts,
    # importing the NIF's Python half fails, and load says so.
    dir = Path.join(System.tmp_dir!(), "mirage-bare-venv-#{System.unique_integer([:positive])}")
    {:ok, %{python: python}} = Mirage.Python.recorded()
    {_, 0} = System.cmd(python, ["-m", "venv", "--without-pip", dir])

    try do
      {out, 0} = in_vm(@call_nif, [{"MIRAGE_PYTHON", Path.join(dir, "bin/python")}])
      assert out =~ "the Python side failed to import"
      assert out =~ "No module named"
      assert out =~ "vm_alive=true"
    after
      File.rm_rf!(dir)
    end
  end

  test "configured for another transport, no interpreter starts until the first :nif call" do
    script =
      @mapped <>
        """
        defmodule OtherTransport do
          @behaviour Mirage.Transport
          def call(_op, _source, _args), do: {:error, :worker_crashed}
          def release(_handle), do: :ok
          def live_handles, do: 0
        end

        Application.put_env(:mirage, :transport, OtherTransport)
        {:ok, _} = Application.ensure_all_started(:mirage)
        # As a release does at boot: every module of the application loaded.
        for module <- Application.spec(:mirage, :modules), do: {:module, _} = Code.ensure_loaded(module)
        IO.puts("started=" <> inspect(mapped.()))
        IO.puts("other=" <> inspect(Mirage.info("bytes")))
        IO.puts("nif=" <> inspect(Mirage.info(File.read!("samples/rocket.jpg"), transport: :nif)))
        IO.puts("used=" <> inspect(mapped.()))
        """

    {out, 0} = in_vm(script)
    assert out =~ "started={false, false}"
    assert out =~ "other={:error, :worker_crashed}"
    assert out =~ "nif={:ok, %{"
    assert out =~ "used={true, true}"
  end

  test "configured for :nif (the default), the application loads the NIF as it starts" do
    script =
      @mapped <>
        """
        IO.puts("before=" <> inspect(mapped.()))
        {:ok, _} = Application.ensure_all_started(:mirage)
        IO.puts("started=" <> inspect(mapped.()))
        """

    {out, 0} = in_vm(script)
    assert out =~ "before={false, false}"
    assert out =~ "started={true, true}"
  end

  test "concurrent first calls load the NIF once and all succeed" do
    script = """
    bytes = File.read!("samples/rocket.jpg")

    results =
      1..16
      |> Enum.map(fn _ -> Task.async(fn -> Mirage.info(bytes) end) end)
      |> Enum.map(&Task.await(&1, 60_000))

    IO.puts("all_ok=" <> inspect(Enum.all?(results, &match?({:ok, %{width: 640}}, &1))))
    """

    {out, 0} = in_vm(script)
    assert out =~ "all_ok=true"
    refute out =~ "not loaded"
  end

  test "concurrent first PNG thumbnails give the bytes every later one gives" do
    # The first calls load the PNG fast path (mirage/pngfast.py); one that arrived
    # while another was loading it once wrote its PNG with Pillow (other bytes). The
    # source is a small GIF: no colour profile (which sends PNGs through Pillow), and
    # each call is quick, so the calls after the first arrive while it loads.
    script = """
    rocket = File.read!("samples/rocket.jpg")
    {small, _} = Mirage.thumbnail!(rocket, 64, 48, format: :gif, transport: :nif)
    thumb = fn -> elem(Mirage.thumbnail!(small, 48, 40, format: :png, transport: :nif), 0) end
    firsts = 1..4 |> Enum.map(fn _ -> Task.async(thumb) end) |> Enum.map(&Task.await(&1, 60_000))
    later = thumb.()
    IO.puts("same=" <> inspect(Enum.map(firsts, &(&1 == later))))
    """

    {out, 0} = in_vm(script)
    assert out =~ "same=[true, true, true, true]"
  end

  test "the first call, straight to the transport, can decode every key of its result" do
    # Python may only name atoms that exist; loading the NIF makes sure they do.
    script = """
    args = %{max_pixels: 1_000_000, allowed_formats: [:jpg], timeout: 5_000}
    reply = Mirage.Transport.NIF.call(:info, File.read!("samples/rocket.jpg"), args)
    IO.puts("reply=" <> inspect(reply))
    """

    {out, 0} = in_vm(script)
    assert out =~ "reply={:ok, nil, nil, %{"
    assert out =~ "has_alpha: false"
  end

  test "every load failure code has a message" do
    for code <- Mirage.NIF.Loader.codes(),
        do: refute(Mirage.NIF.Loader.explain(code) =~ "load failed with code")

    assert Mirage.NIF.Loader.explain(99) =~ "code 99"
  end
end
