defmodule Mirage.NIF.LoaderTest do
  use ExUnit.Case, async: true

  # A fresh VM per case: Python can be started only once per OS process.
  defp load_in_vm(env) do
    script = """
    result = Code.ensure_loaded(Mirage.NIF)
    IO.puts("loaded=" <> inspect(result))
    IO.puts("vm_alive=true")
    """

    System.cmd("mix", ["run", "--no-compile", "--no-start", "-e", script],
      env: [{"MIX_ENV", "test"} | env],
      stderr_to_stdout: true
    )
  end

  test "a missing interpreter fails the load with a readable reason, not the VM" do
    {out, 0} = load_in_vm([{"MIRAGE_PYTHON", "/nonexistent/bin/python"}])
    assert out =~ ~s(Python executable "/nonexistent/bin/python" does not exist)
    assert out =~ "loaded={:error, :on_load_failure}"
    assert out =~ "vm_alive=true"
  end

  test "an interpreter without the Python side fails the load with a readable reason" do
    # A virtualenv of the same Python without Pillow: the interpreter starts,
    # importing the NIF's Python half fails, and load says so.
    dir = Path.join(System.tmp_dir!(), "mirage-bare-venv-#{System.unique_integer([:positive])}")
    {:ok, %{python: python}} = Mirage.NIF.Loader.load_info(:code.priv_dir(:mirage))
    {_, 0} = System.cmd(python, ["-m", "venv", "--without-pip", dir])

    try do
      {out, 0} = load_in_vm([{"MIRAGE_PYTHON", Path.join(dir, "bin/python")}])
      assert out =~ "the Python side failed to import"
      assert out =~ "No module named"
      assert out =~ "vm_alive=true"
    after
      File.rm_rf!(dir)
    end
  end

  test "load_info reads the interpreter recorded at build time, overridable by config" do
    priv = :code.priv_dir(:mirage)
    {:ok, info} = Mirage.NIF.Loader.load_info(priv)
    assert File.regular?(info.python)
    assert File.regular?(info.libpython)
    assert File.dir?(Path.join(info.path, "mirage"))
  end

  test "every load failure code has a message" do
    for code <- 1..6, do: refute(Mirage.NIF.Loader.explain(code) =~ "load failed with code")
    assert Mirage.NIF.Loader.explain(99) =~ "code 99"
  end
end
