defmodule Mirage.NIF.Loader do
  @moduledoc """
  Prepares the load of `priv/mirage_nif.so` for `Mirage.NIF` and explains a failure.

  The interpreter (and so the libpython the NIF embeds) is the one `Mirage.Python`
  picks.
  """

  # The codes of `enum mirage_load_error` in c_src/python.h (the owner);
  # test/mirage/tables_test.exs fails when the two drift.
  @load_errors %{
    1 => "bad load_info (priv/mirage.env is incomplete; rebuild with mix compile)",
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
    object = Path.join(priv, "mirage_nif")

    with {:ok, python} <- Mirage.Python.interpreter(priv),
         :ok <- check_libpython(python),
         :ok <- check_object(object <> ".so") do
      {:ok, String.to_charlist(object), Map.take(python, [:python, :libpython, :path])}
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

  @doc "The message for a load failure code returned by the NIF's `load` callback."
  @spec explain(integer()) :: String.t()
  def explain(code), do: Map.get(@load_errors, code, "load failed with code #{code}")

  @doc false
  @spec codes() :: [pos_integer()]
  def codes, do: @load_errors |> Map.keys() |> Enum.sort()

  defp check_libpython(%{libpython: ""}),
    do: {:error, "the build's Python has no shared libpython, which the NIF embeds"}

  defp check_libpython(_python), do: :ok

  defp check_object(path) do
    if File.regular?(path),
      do: :ok,
      else: {:error, "#{path} does not exist; build it with mix compile (compiler :mirage_nif)"}
  end
end
