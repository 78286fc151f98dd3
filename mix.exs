defmodule Mix.Tasks.Compile.MiragePython do
  @moduledoc """
  Stages the `mirage` Python package in `priv/python` and records the interpreter
  in `priv/mirage.env` (path, version, libpython), by running `c_src/build.py stage`.
  Every transport needs it; it needs no C compiler.

  The Python is `$MIRAGE_PYTHON`, else `.venv/bin/python`, else `python3` on PATH.
  It reruns when a Python source of the package or the interpreter changes.
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    python = python!()
    inputs = Path.wildcard("mirage/**/*.py") ++ ["c_src/png/unfilter.c", "c_src/jpeg/dcscale.c"]

    run_build(python, ["stage", "--out", "priv"], "priv/mirage_python.stamp", inputs, [
      "priv/mirage.env"
    ])
  end

  @impl true
  def clean do
    Enum.each(["priv/mirage.env", "priv/mirage_python.stamp"], &File.rm/1)
    File.rm_rf("priv/python")
  end

  @doc false
  def python! do
    venv = Path.expand(".venv/bin/python")

    cond do
      path = System.get_env("MIRAGE_PYTHON") -> path
      File.exists?(venv) -> venv
      path = System.find_executable("python3") -> path
      true -> Mix.raise("mirage: no Python found; run `make setup` or set MIRAGE_PYTHON")
    end
  end

  @doc false
  # Runs c_src/build.py with `args` unless `outputs` exist and the stamp (of the
  # arguments, the inputs and the interpreter) is unchanged.
  def run_build(python, args, stamp_file, inputs, outputs) do
    stamp = stamp(python, args, inputs)

    if Enum.all?(outputs, &File.exists?/1) and File.read(stamp_file) == {:ok, stamp} do
      {:noop, []}
    else
      Mix.shell().info("c_src/build.py #{hd(args)} with #{python}")

      case System.cmd(python, ["c_src/build.py" | args], stderr_to_stdout: true) do
        {_output, 0} ->
          File.write!(stamp_file, stamp)
          # Mix links priv/ into _build before compilers run; on a fresh clone priv/
          # did not exist then, so link it now.
          Mix.Project.build_structure()
          {:ok, []}

        {output, status} ->
          Mix.shell().error(output)

          diagnostic = %Mix.Task.Compiler.Diagnostic{
            compiler_name: "mirage",
            file: Path.expand("c_src/build.py"),
            message: "c_src/build.py #{hd(args)} exited with status #{status}",
            position: nil,
            severity: :error
          }

          {:error, [diagnostic]}
      end
    end
  end

  defp stamp(python, args, inputs) do
    sources = inputs |> Enum.sort() |> Enum.map(&{&1, File.read!(&1)})
    # The interpreter itself, through the venv symlink, and the venv's config.
    interpreter =
      {python, File.stat(python), File.read(Path.join(Path.dirname(python), "../pyvenv.cfg"))}

    :erlang.md5(:erlang.term_to_binary({args, sources, interpreter})) |> Base.encode16()
  end
end

defmodule Mix.Tasks.Compile.MirageNif do
  @moduledoc """
  Builds `priv/mirage_nif.so` (the `:nif` transport) by running
  `c_src/build.py nif` with the Python of `Mix.Tasks.Compile.MiragePython`.

  Rebuilt when any C source, the build script, a Python source of the `mirage`
  package (the C tables are generated from it), the interpreter or
  `$MIRAGE_NIF_SANITIZE` changes. `MIRAGE_NIF_SANITIZE=address` builds it with
  AddressSanitizer for `make memcheck`; a VM loads that build only with the
  sanitizer's runtime preloaded.
  """
  use Mix.Task.Compiler

  @object "priv/mirage_nif.so"

  @impl true
  def run(_args) do
    python = Mix.Tasks.Compile.MiragePython.python!()

    erts_include =
      Path.join([:code.root_dir(), "erts-#{:erlang.system_info(:version)}", "include"])

    inputs = Path.wildcard("c_src/*.{c,h,py}") ++ Path.wildcard("mirage/**/*.py")
    args = ["nif", "--erts-include", erts_include, "--out", "priv"] ++ sanitize()

    Mix.Tasks.Compile.MiragePython.run_build(python, args, "priv/mirage_nif.stamp", inputs, [
      @object
    ])
  end

  @impl true
  def clean, do: Enum.each([@object, "priv/mirage_nif.stamp"], &File.rm/1)

  defp sanitize do
    case System.get_env("MIRAGE_NIF_SANITIZE", "") do
      "" -> []
      sanitizer -> ["--sanitize", sanitizer]
    end
  end
end

defmodule Mirage.MixProject do
  use Mix.Project

  def project do
    [
      app: :mirage,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:mirage_python, :mirage_nif] ++ Mix.compilers(),
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
