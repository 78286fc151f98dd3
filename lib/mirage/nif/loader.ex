defmodule Mirage.NIF.Loader do
  @moduledoc """
  Loads `priv/mirage_nif.so` for `Mirage.NIF` and explains a failure.

  The NIF embeds the Python recorded at build time in `priv/mirage_nif.env`. Another
  interpreter of the same version (for example another virtualenv) can be chosen
  with the `MIRAGE_PYTHON` environment variable or `config :mirage, python: path`.
  """

  @load_errors %{
    1 => "bad load_info (priv/mirage_nif.env is incomplete; rebuild with mix compile)",
    2 => "libpython could not be opened (is the Python that built the NIF still installed?)",
    3 => "the Python interpreter failed to start (details on stderr)",
    4 =>
      "the Python side failed to import: is Pillow installed for that Python? (traceback on stderr)",
    5 => "the release thread could not be started",
    6 => "the resource type could not be created"
  }

  @doc false
  @spec prepare() :: {:ok, charlist(), map()} | {:error, {:mirage_nif, String.t()}}
  def prepare do
    priv = :code.priv_dir(:mirage)

    with {:ok, info} <- load_info(priv),
         :ok <- check_python(info.python) do
      {:ok, String.to_charlist(Path.join(priv, "mirage_nif")), info}
    else
      {:error, message} -> {:error, {:mirage_nif, message}}
    end
  end

  @doc false
  @spec result(:ok | {:error, term()}) :: :ok | {:error, {:mirage_nif, String.t()}}
  def result(:ok), do: :ok

  def result({:error, {_kind, text}} = error) when is_list(text) or is_binary(text) do
    # The load callback's return code is only visible in ERTS's text.
    case Regex.run(~r/unsuccessful \((\d+)\)/, to_string(text)) do
      [_, code] -> {:error, {:mirage_nif, explain(String.to_integer(code))}}
      nil -> {:error, {:mirage_nif, inspect(error)}}
    end
  end

  def result({:error, other}), do: {:error, {:mirage_nif, inspect(other)}}

  @doc """
  What `Mirage.NIF` passes to the NIF: the Python executable, its libpython and the
  directory holding the `mirage` package.
  """
  @spec load_info(charlist() | String.t()) ::
          {:ok, %{python: String.t(), libpython: String.t(), path: String.t()}}
          | {:error, String.t()}
  def load_info(priv) do
    env_file = Path.join(priv, "mirage_nif.env")

    case File.read(env_file) do
      {:ok, text} ->
        recorded =
          for line <- String.split(text, "\n", trim: true),
              [key, value] <- [String.split(line, "=", parts: 2)],
              into: %{},
              do: {key, value}

        python =
          System.get_env("MIRAGE_PYTHON") || Application.get_env(:mirage, :python) ||
            Map.get(recorded, "python", "")

        {:ok,
         %{
           python: to_string(python),
           libpython: Map.get(recorded, "libpython", ""),
           path: Path.join(priv, "python")
         }}

      {:error, reason} ->
        {:error, "cannot read #{env_file} (#{:file.format_error(reason)}); run mix compile"}
    end
  end

  @doc "The message for a load failure code returned by the NIF's `load` callback."
  @spec explain(integer()) :: String.t()
  def explain(code), do: Map.get(@load_errors, code, "load failed with code #{code}")

  defp check_python(python) do
    if File.regular?(python),
      do: :ok,
      else: {:error, "Python executable #{inspect(python)} does not exist"}
  end
end
