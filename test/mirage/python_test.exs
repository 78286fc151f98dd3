defmodule Mirage.PythonTest do
  # Not async: one test sets MIRAGE_PYTHON, which Mirage.Python reads.
  use ExUnit.Case, async: false

  @moduletag :tmp_dir

  test "the build records the interpreter, its version, its libpython and the package" do
    {:ok, recorded} = Mirage.Python.recorded()
    assert File.regular?(recorded.python)
    assert recorded.version =~ ~r/^3\.\d+$/
    assert File.regular?(recorded.libpython)
    assert File.regular?(Path.join([recorded.path, "mirage", "ops.py"]))
    assert Mirage.Python.interpreter() == {:ok, recorded}
  end

  test "MIRAGE_PYTHON picks another interpreter of the same version" do
    {:ok, recorded} = Mirage.Python.recorded()
    # The interpreter behind the recorded one (a virtualenv's python is a symlink).
    base =
      Path.expand(
        :file.read_link_all(recorded.python) |> elem(1) |> to_string(),
        Path.dirname(recorded.python)
      )

    with_env("MIRAGE_PYTHON", base, fn ->
      assert {:ok, %{python: ^base, version: version}} = Mirage.Python.interpreter()
      assert version == recorded.version
    end)
  end

  test "an interpreter of another version is refused with a message to rebuild", %{tmp_dir: dir} do
    other = Path.join(dir, "python")
    File.write!(other, "#!/bin/sh\necho 2.7\n")
    File.chmod!(other, 0o755)

    with_env("MIRAGE_PYTHON", other, fn ->
      assert {:error, message} = Mirage.Python.interpreter()
      assert message =~ "is Python 2.7, but Mirage was built with Python"
      assert message =~ "rebuild"
    end)
  end

  @other_python Mirage.Test.OtherPython.find()
  if @other_python == nil,
    do: @tag(skip: "no Python 3 of another minor version on this machine")

  test "a real interpreter of another minor version is refused for the port too" do
    with_env("MIRAGE_PYTHON", @other_python, fn ->
      assert {:error, message} = Mirage.Python.interpreter()
      assert message =~ "but Mirage was built with Python"

      assert {:error, ^message} =
               Mirage.Port.Worker.program(max_memory: 1, max_images: 1, max_held: 1)
    end)
  end

  test "a missing or incomplete env file is reported, not raised", %{tmp_dir: dir} do
    assert {:error, message} = Mirage.Python.interpreter(dir)
    assert message =~ "mirage.env"
    File.write!(Path.join(dir, "mirage.env"), "python=/usr/bin/python3\n")
    assert {:error, message} = Mirage.Python.interpreter(dir)
    assert message =~ "incomplete"
  end

  defp with_env(name, value, fun) do
    previous = System.get_env(name)
    System.put_env(name, value)

    try do
      fun.()
    after
      if previous, do: System.put_env(name, previous), else: System.delete_env(name)
    end
  end
end
