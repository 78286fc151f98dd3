defmodule Mirage.ConformanceCase do
  @moduledoc false
  # The conformance suite: tests of the public API that run once per transport.
  #
  #     defmodule Mirage.Conformance.ImagingTest do
  #       use Mirage.ConformanceCase
  #
  #       conformance async: true do
  #         @sample File.read!("samples/rocket.jpg")
  #         test "...", %{transport: transport} do
  #           assert {:ok, image} = Mirage.from_bytes(@sample)
  #         end
  #       end
  #     end
  #
  # `conformance` defines one ExUnit module per transport (ImagingTest.NIF, later
  # ImagingTest.Port, ...), tagged `transport: name` (so `mix test --only
  # transport:nif` picks one), with the context's `:transport` set to the name. In
  # its body every remote call `Mirage.f(...)` goes to `Mirage.Test.Via.<T>.f(...)`,
  # which adds `transport: name` to the options: tests read as plain API use and
  # pass the transport per call. An image keeps going to the transport that made it.
  #
  # The transports are every entry of `Mirage.Transport.transports/0`: a new
  # transport joins the suite by joining that list. `MIRAGE_TRANSPORTS=nif,port`
  # limits a run to some of them. If its tests need something (a component that may
  # be missing, a pool to start), it adds a clause to unavailable/1 and setup_all/1.

  @doc "The transports the suite runs on, by name."
  @spec transports() :: [atom()]
  def transports do
    all = Mirage.Transport.transports() |> Map.keys() |> Enum.sort()

    case System.get_env("MIRAGE_TRANSPORTS") do
      nil -> all
      "" -> all
      names -> Enum.filter(all, &(Atom.to_string(&1) in String.split(names, ",", trim: true)))
    end
  end

  @doc """
  Why `name`'s conformance modules must be skipped here (an optional component is
  missing), or `nil`. Checked when the test files compile.
  """
  @spec unavailable(atom()) :: String.t() | nil
  def unavailable(_name), do: nil

  @doc "What each conformance module of `name` needs before its tests: ExUnit context."
  @spec setup_all(atom()) :: keyword()
  def setup_all(name), do: [transport: name]

  @doc "The module that calls Mirage with `transport: name`."
  @spec via(atom()) :: module()
  def via(name), do: Module.concat(Mirage.Test.Via, suffix(name))

  @doc false
  def suffix(name), do: name |> Atom.to_string() |> String.upcase()

  defmacro __using__(_opts) do
    quote do
      import Mirage.ConformanceCase, only: [conformance: 2]
    end
  end

  defmacro conformance(case_opts, do: block) do
    for name <- transports() do
      via = via(name)
      body = Macro.prewalk(block, &reroute(&1, via))

      quote do
        defmodule unquote(Module.concat(__CALLER__.module, suffix(name))) do
          use ExUnit.Case, unquote(case_opts)
          @moduletag transport: unquote(name)

          if reason = Mirage.ConformanceCase.unavailable(unquote(name)) do
            @moduletag skip: reason
          end

          setup_all do: Mirage.ConformanceCase.setup_all(unquote(name))
          unquote(body)
        end
      end
    end
  end

  # Mirage.f(args) -> Via.f(args); %Mirage{}, Mirage.Error and friends unchanged.
  defp reroute({{:., meta, [{:__aliases__, _, [:Mirage]}, fun]}, call_meta, args}, via)
       when is_atom(fun) and fun != :__struct__,
       do: {{:., meta, [via, fun]}, call_meta, args}

  defp reroute(node, _via), do: node

  @doc """
  Runs `fun` once per transport and returns the results by transport name, after
  asserting they are all equal: deterministic outputs must be byte-identical
  whichever transport made them.
  """
  @spec same_across_transports((atom() -> term()), [atom()]) :: %{atom() => term()}
  def same_across_transports(fun, names \\ transports()) do
    results = Map.new(names, &{&1, fun.(&1)})

    case results |> Map.values() |> Enum.uniq() do
      [_one] ->
        results

      _many ->
        raise ExUnit.AssertionError,
          message: "transports gave different results",
          expr: inspect(Map.new(results, fn {k, v} -> {k, summary(v)} end))
    end
  end

  # Long binaries as their size and digest, so the message shows which ones differ.
  defp summary(bytes) when is_binary(bytes) and byte_size(bytes) > 32,
    do: {byte_size(bytes), Base.encode16(:erlang.md5(bytes), case: :lower)}

  defp summary(list) when is_list(list), do: Enum.map(list, &summary/1)

  defp summary(tuple) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> Enum.map(&summary/1) |> List.to_tuple()

  defp summary(term), do: term
end

# One Mirage.Test.Via.<T> per transport: every public function of Mirage, with
# `transport: name` added to its options (when it has options and they are a keyword
# list without :transport; bad options pass through unchanged, for the tests of them).
for name <- Map.keys(Mirage.Transport.transports()) do
  defmodule Mirage.ConformanceCase.via(name) do
    @moduledoc false
    @transport name
    functions = Mirage.__info__(:functions)

    for {fun, arity} <- functions, fun != :__struct__ do
      arities = for {^fun, a} <- functions, do: a
      args = Macro.generate_arguments(arity, __MODULE__)

      cond do
        # release/1 and the like: no options; the image names its transport.
        length(arities) == 1 ->
          def unquote(fun)(unquote_splicing(args)),
            do: Mirage.unquote(fun)(unquote_splicing(args))

        # The arity that takes options: add the transport to them.
        arity == Enum.max(arities) ->
          {given, [opts]} = Enum.split(args, arity - 1)

          def unquote(fun)(unquote_splicing(args)),
            do: Mirage.unquote(fun)(unquote_splicing(given), with_transport(unquote(opts)))

        true ->
          def unquote(fun)(unquote_splicing(args)),
            do: Mirage.unquote(fun)(unquote_splicing(args), transport: @transport)
      end
    end

    defp with_transport(opts) do
      if Keyword.keyword?(opts) and not Keyword.has_key?(opts, :transport),
        do: opts ++ [transport: @transport],
        else: opts
    end
  end
end
