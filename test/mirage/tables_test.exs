defmodule Mirage.TablesTest do
  # Each table shared across languages has one owner; these tests fail when a copy
  # drifts from it. Python owns reasons, formats, the default pixel budget and the
  # keys of info's result; Elixir (Mirage.Options) owns the option names and values,
  # which the core's keyword arguments must match; C owns the load error codes and
  # the "released" code (c_src/py_api.h, read by Python as lib.MIRAGE_CODE_RELEASED,
  # so cffi checks it at build time). The NIF's own atom tables are compared with
  # Elixir's in test/mirage/nif/nif_test.exs.
  use ExUnit.Case, async: true

  @script Path.expand("../support/tables.py", __DIR__)

  setup_all do
    {:ok, python} = Mirage.Python.interpreter()

    {out, 0} =
      System.cmd(python.python, [@script],
        env: [{"PYTHONPATH", python.path}],
        stderr_to_stdout: true
      )

    rows = out |> String.split("\n", trim: true) |> Enum.map(&String.split(&1, " "))
    tables = for [name | values] <- rows, name != "option", into: %{}, do: {name, values}

    options =
      for ["option", op, name | kind] <- rows,
          reduce: %{},
          do: (acc -> Map.update(acc, op, %{name => kind}, &Map.put(&1, name, kind)))

    %{python: tables, options: options}
  end

  defp names(atoms), do: Enum.map(atoms, &Atom.to_string/1)

  test "core reasons: Mirage.Error and the NIF's atom table match mirage.errors.REASONS", %{
    python: python
  } do
    assert names(Mirage.Error.core_reasons()) == python["reasons"]

    assert Mirage.Error.reasons() -- Mirage.Error.transport_reasons() ==
             Mirage.Error.core_reasons()

    assert Mirage.Error.transport_reasons() ==
             [:timeout, :worker_crashed, :overloaded, :not_distributed]
  end

  test "formats match mirage.formats.FORMATS, in order", %{python: python} do
    assert names(Mirage.Options.formats()) == python["formats"]
  end

  test "the default pixel budget matches mirage.DEFAULT_MAX_PIXELS", %{python: python} do
    assert python["default_max_pixels"] == [
             Integer.to_string(Mirage.Options.default_max_pixels())
           ]
  end

  test "the atoms kept for safe decoding are the keys of info's and formats' results", %{
    python: python
  } do
    atoms = Mirage.Transport.term_atoms()
    assert Enum.sort(names(atoms.info)) == Enum.sort(python["info_keys"])
    assert Enum.sort(names(atoms.formats)) == Enum.sort(python["formats_keys"])
  end

  test "each operation's options are the core's keyword arguments, with the same values", %{
    python: python,
    options: options
  } do
    types = Mirage.Options.types()
    assert map_size(options) == 8

    for {op, python_options} <- options do
      elixir = names(Mirage.Options.allowed(String.to_existing_atom(op)))
      limits = ["max_pixels", "max_scans", "allowed_formats"]
      assert Enum.sort(elixir) == Enum.sort(Map.keys(python_options) -- limits), op
      assert Map.has_key?(python_options, "max_pixels"), op

      for {name, kind} <- python_options do
        case {kind, Map.fetch!(types, String.to_existing_atom(name))} do
          {["literal" | values], {:one_of, atoms}} -> assert values == names(atoms), name
          {["bool"], type} -> assert type == :boolean, name
          {["int"], type} -> assert match?({:integer, _}, type), name
          {["other"], _type} -> :ok
        end
      end
    end

    # Both resample operations run the same Python function.
    assert Mirage.Options.allowed(:resize) == Mirage.Options.allowed(:thumbnail)
    # The values Python types only as strings.
    assert {:one_of, gravities} = types.gravity
    assert names(gravities) == python["gravities"]
    assert {:one_of, formats} = types.format
    assert names(formats) == python["formats"]
  end

  test "load error codes: Mirage.NIF.Loader explains each code of c_src/python.h" do
    header = File.read!(Path.expand("../../c_src/python.h", __DIR__))

    codes =
      for [_, name, code] <- Regex.scan(~r/MIRAGE_LOAD_(\w+) = (\d+)/, header),
          name != "OK",
          do: String.to_integer(code)

    assert codes != []
    assert Enum.sort(codes) == Mirage.NIF.Loader.codes()
  end
end
