defmodule Mix.Tasks.Compile.MirageNif do
  @moduledoc """
  Builds `priv/mirage_nif.so` by running `c_src/build.py` with the project's Python.

  The Python is `$MIRAGE_PYTHON`, else `.venv/bin/python`, else `python3` on PATH.
  The object is rebuilt when any C source, the build script, a Python source of the
  `mirage` package, or the interpreter changes (a stamp in `priv/` records them).
  """
  use Mix.Task.Compiler

  @stamp "priv/mirage_nif.stamp"
  @object "priv/mirage_nif.so"

  @impl true
  def run(_args) do
    python = python!()
    stamp = stamp(python)

    if File.exists?(@object) and File.read(@stamp) == {:ok, stamp} do
      {:noop, []}
    else
      build(python, stamp)
    end
  end

  @impl true
  def clean do
    Enum.each([@object, @stamp, "priv/mirage_nif.env"], &File.rm/1)
    File.rm_rf("priv/python")
  end

  defp build(python, stamp) do
    Mix.shell().info("Building #{@object} with #{python}")

    erts_include =
      Path.join([:code.root_dir(), "erts-#{:erlang.system_info(:version)}", "include"])

    args = ["c_src/build.py", "--erts-include", erts_include, "--out", "priv"]

    case System.cmd(python, args, stderr_to_stdout: true) do
      {_output, 0} ->
        File.write!(@stamp, stamp)
        # Mix links priv/ into _build before compilers run; on a fresh clone priv/
        # did not exist then, so link it now.
        Mix.Project.build_structure()
        {:ok, []}

      {output, status} ->
        Mix.shell().error(output)

        diagnostic = %Mix.Task.Compiler.Diagnostic{
          compiler_name: "mirage_nif",
          file: Path.expand("c_src/build.py"),
          message: "c_src/build.py exited with status #{status}",
          position: nil,
          severity: :error
        }

        {:error, [diagnostic]}
    end
  end

  defp python! do
    venv = Path.expand(".venv/bin/python")

    cond do
      path = System.get_env("MIRAGE_PYTHON") -> path
      File.exists?(venv) -> venv
      path = System.find_executable("python3") -> path
      true -> Mix.raise("mirage: no Python found; run `make setup` or set MIRAGE_PYTHON")
    end
  end

  defp stamp(python) do
    inputs = Enum.sort(Path.wildcard("c_src/*.{c,h,py}") ++ Path.wildcard("mirage/**/*.py"))
    sources = Enum.map(inputs, &{&1, File.read!(&1)})
    # The interpreter itself, through the venv symlink, and the venv's config.
    interpreter =
      {python, File.stat(python), File.read(Path.join(Path.dirname(python), "../pyvenv.cfg"))}

    :erlang.md5(:erlang.term_to_binary({sources, interpreter})) |> Base.encode16()
  end
end

defmodule Mirage.MixProject do
  use Mix.Project

  def project do
    [
      app: :mirage,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:mirage_nif] ++ Mix.compilers(),
      start_permanent: Mix.env() == :prod,
      elixirc_paths: elixirc_paths(Mix.env()),
      deps: [],
      description: "Image decoding, resizing and encoding for Elixir, on Python's Pillow"
    ]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  def application do
    [mod: {Mirage.Application, []}, extra_applications: [:logger]]
  end
end
