defmodule Mirage.Python do
  @moduledoc """
  Finds the Python interpreter and the `mirage` package, for every transport.

  The build (`mix compile`, compiler `:mirage_python`) stages the package in
  `priv/python/mirage` and records the interpreter it used in `priv/mirage.env`:
  its path, its `major.minor` version and its shared libpython (used by the NIF).
  Another interpreter can be chosen, in this order:

    1. the `MIRAGE_PYTHON` environment variable;
    2. `config :mirage, python: path`;
    3. the one recorded at build time.

  It must be the same `major.minor` as the recorded one (the NIF is linked against
  that libpython, and the staged package was checked with it); another version is
  refused with a message telling to rebuild. A virtualenv of the same Python is fine.
  """

  @env_file "mirage.env"

  @typedoc "What a transport needs to run the core."
  @type t :: %{
          python: String.t(),
          version: String.t(),
          libpython: String.t(),
          path: String.t()
        }

  @doc """
  The interpreter to use, checked: `python` (its path), `version` (`"3.11"`),
  `libpython` (the shared library recorded at build time, `""` when the build's
  Python had none) and `path` (the directory holding the `mirage` package, for
  `PYTHONPATH`). `priv` defaults to the application's priv directory.
  """
  @spec interpreter(Path.t() | charlist() | nil) :: {:ok, t()} | {:error, String.t()}
  def interpreter(priv \\ nil) do
    priv = to_string(priv || :code.priv_dir(:mirage))

    with {:ok, recorded} <- recorded(priv),
         python = chosen(recorded),
         :ok <- check_exists(python),
         :ok <- check_version(python, recorded) do
      {:ok, %{recorded | python: python}}
    end
  end

  @doc """
  What the build recorded in `priv/mirage.env`, without the overrides.
  """
  @spec recorded(Path.t() | charlist() | nil) :: {:ok, t()} | {:error, String.t()}
  def recorded(priv \\ nil) do
    priv = to_string(priv || :code.priv_dir(:mirage))
    env_file = Path.join(priv, @env_file)

    case File.read(env_file) do
      {:ok, text} ->
        fields =
          for line <- String.split(text, "\n", trim: true),
              [key, value] <- [String.split(line, "=", parts: 2)],
              into: %{},
              do: {key, value}

        case fields do
          %{"python" => python, "version" => version} when python != "" and version != "" ->
            {:ok,
             %{
               python: python,
               version: version,
               libpython: Map.get(fields, "libpython", ""),
               path: Path.join(priv, "python")
             }}

          _incomplete ->
            {:error, "#{env_file} is incomplete; rebuild with mix compile"}
        end

      {:error, reason} ->
        {:error, "cannot read #{env_file} (#{:file.format_error(reason)}); run mix compile"}
    end
  end

  defp chosen(recorded) do
    to_string(
      System.get_env("MIRAGE_PYTHON") || Application.get_env(:mirage, :python) ||
        recorded.python
    )
  end

  defp check_exists(python) do
    if File.regular?(python),
      do: :ok,
      else: {:error, "Python executable #{inspect(python)} does not exist"}
  end

  # The recorded interpreter is the build's own; any other is asked its version.
  defp check_version(python, %{python: python}), do: :ok

  defp check_version(python, %{version: recorded}) do
    script = "import sys; print('%d.%d' % sys.version_info[:2])"

    case System.cmd(python, ["-c", script], stderr_to_stdout: true) do
      {output, 0} ->
        case String.trim(output) do
          ^recorded ->
            :ok

          other ->
            {:error,
             "#{python} is Python #{other}, but Mirage was built with Python #{recorded}; " <>
               "rebuild with that interpreter (MIRAGE_PYTHON=#{python} mix compile --force)"}
        end

      {output, status} ->
        {:error, "#{python} failed to run (status #{status}): #{String.trim(output)}"}
    end
  rescue
    error in ErlangError ->
      {:error, "#{python} could not be run: #{Exception.message(error)}"}
  end
end
