defmodule Mirage.Transport do
  @moduledoc """
  How `Mirage` reaches the Python core.

  Every transport carries the same operations (the names in `mirage/ops.py`) with
  the same arguments: a source (a held image's handle, encoded bytes, or `nil`) and
  one plain options map, already validated by `Mirage.Options` (which has taken
  `:transport` out; `:timeout` stays in, in milliseconds or `:infinity`, for the
  transport to enforce and the core to honour).

  ## The transports
  The one list of transports is `transports/0`: a name (what `transport:` and
  `config :mirage, transport: name` take) and the module implementing this
  behaviour. `:nif` (`Mirage.Transport.NIF`, Python embedded in the VM) is the
  default. A module implementing this behaviour may also be given in place of a
  name (for tests and custom transports).

  ## What every transport promises
    * **No held image lives forever.** A transport documents when the images it
      holds are freed without `release/1` (the NIF: at garbage collection; a
      worker process: when the owning process exits), and bounds how many it holds.
    * **`release/1` is idempotent** and never blocks on the core: releasing an
      image twice, or one whose worker is gone, returns `:ok`.
    * **Using a released image answers `:released`**, which `Mirage` turns into an
      `ArgumentError`.
    * **Reasons come from `Mirage.Error.reasons/0`.** Anything else is turned into
      `:internal_error` by `result/2`.
    * **Atoms must exist.** A transport that decodes the core's answer with
      `:erlang.binary_to_term(bin, [:safe])` (the NIF does) fails on an atom the VM
      does not know yet. Every atom the core may answer (formats, reasons, the keys
      of `info`'s and `formats`' results) is therefore kept in this module (see
      `term_atoms/0`); such a transport loads this module before its first decode
      (the NIF does as it loads), and test/mirage/tables_test.exs checks the list
      against the Python core. Never create atoms from what a worker sends
      (`String.to_atom/1`).

  ## Answers
  `c:call/3` answers `{:ok, bytes | nil, image | nil, term | nil}`,
  `{:error, reason}` or `:released`. `result/2` is the one place that decodes that
  answer for an operation: a shape the operation does not produce is logged and
  becomes `{:error, :internal_error}`.
  """

  require Logger

  # The one list of transports.
  @transports %{
    nif: Mirage.Transport.NIF,
    port: Mirage.Transport.Port,
    node: Mirage.Transport.Node
  }

  @typedoc "A transport's name, a key of `transports/0`."
  @type name :: atom()

  @typedoc "An opaque reference to an image held by the Python core."
  @type handle :: term()

  @typedoc "A new held image: its handle, format and stored size."
  @type image :: {handle(), Mirage.format(), pos_integer(), pos_integer()}

  @typedoc "The operations, as named in mirage/ops.py."
  @type op ::
          :from_bytes
          | :info
          | :thumbnail
          | :resize
          | :crop
          | :rotate
          | :flip
          | :auto_orient
          | :to_bytes
          | :formats

  @typedoc "What `c:call/3` answers."
  @type reply ::
          {:ok, binary() | nil, image() | nil, term()}
          | {:error, Mirage.Error.reason()}
          | :released

  @doc """
  Runs `op` and returns what it produced: encoded bytes, a new held image and a
  plain result term, each `nil` when the operation makes none. `:released` when
  the source handle was released by `c:release/1`.
  """
  @callback call(op(), handle() | binary() | nil, map()) :: reply()

  @doc "Lets go of a held image now; idempotent, and never blocks on the core."
  @callback release(handle()) :: :ok

  @doc "How many images the Python core holds for this transport right now."
  @callback live_handles() :: non_neg_integer()

  @doc """
  What `Mirage.Application` starts under its supervisor when this transport is the
  configured one (`config :mirage, transport: name`): pools, workers, or a child
  that prepares the transport and returns `:ignore`. Default: nothing.
  """
  @callback children() :: [Supervisor.child_spec() | {module(), term()} | module()]

  @doc """
  Whether `term` has the shape of a handle this transport makes (a cheap check in
  the caller's process, no call to the core). `Mirage` refuses a struct whose
  resource fails it, so a forged resource never reaches the core. Default: any term
  but a binary or `nil` (neither is ever a handle).
  """
  @callback handle?(term()) :: boolean()

  @optional_callbacks children: 0, handle?: 1

  @doc """
  The transports this build has, by name.

      iex> Mirage.Transport.transports()[:nif]
      Mirage.Transport.NIF
  """
  @spec transports() :: %{name() => module()}
  def transports, do: @transports

  @doc false
  # A transport's pool (a child spec module registered under its own name),
  # started under Mirage's supervisor on first use: its pid, whether it was started
  # here or already runs.
  @spec ensure_child(module()) :: pid()
  def ensure_child(pool) do
    case Process.whereis(pool) do
      nil -> start_child(pool)
      pid -> pid
    end
  end

  defp start_child(pool) do
    case Supervisor.start_child(Mirage.Supervisor, pool) do
      {:ok, pid} ->
        pid

      {:error, {:already_started, pid}} ->
        pid

      {:error, :already_present} ->
        case Supervisor.restart_child(Mirage.Supervisor, pool) do
          {:ok, pid} -> pid
          {:error, :running} -> Process.whereis(pool)
          {:error, reason} -> raise "#{inspect(pool)} could not be started: #{inspect(reason)}"
        end

      {:error, reason} ->
        raise "#{inspect(pool)} could not be started: #{inspect(reason)}"
    end
  catch
    :exit, {:noproc, _} ->
      raise "Mirage's supervisor is not running: start the :mirage application first"
  end

  @doc "The configured transport's module (`config :mirage, transport:`, default `:nif`)."
  @spec configured() :: module()
  def configured do
    value = Application.get_env(:mirage, :transport, :nif)

    case module(value) do
      {:ok, module} ->
        module

      :error ->
        raise ArgumentError,
              "invalid config :mirage, transport: #{inspect(value)} (expected #{expected()})"
    end
  end

  @doc """
  The module for a transport's name (or a module implementing this behaviour).

      iex> Mirage.Transport.module(:nif)
      {:ok, Mirage.Transport.NIF}
      iex> Mirage.Transport.module(:carrier_pigeon)
      :error
  """
  @spec module(term()) :: {:ok, module()} | :error
  def module(name) when is_map_key(@transports, name), do: {:ok, Map.fetch!(@transports, name)}

  def module(module) when is_atom(module) and module not in [nil, true, false] do
    if implements?(module), do: {:ok, module}, else: :error
  end

  def module(_other), do: :error

  @doc false
  # Whether an image struct's fields name a transport and a handle it could have made.
  @spec check_handle(term(), term()) :: :ok | {:error, String.t()}
  def check_handle(transport, handle) do
    cond do
      not known?(transport) ->
        {:error, "its transport, #{inspect(transport, limit: 5)}, is not a Mirage transport"}

      not handle_shape?(transport, handle) ->
        {:error,
         "its resource, #{inspect(handle, limit: 5, printable_limit: 40)}, " <>
           "is not an image of #{inspect(transport)}"}

      true ->
        :ok
    end
  end

  # A transport's own check when it has one; whatever it says, bytes and nil are
  # never a handle (a binary would otherwise pass for image bytes).
  defp handle_shape?(_transport, handle) when is_binary(handle) or is_nil(handle), do: false

  defp handle_shape?(transport, handle) do
    not function_exported?(transport, :handle?, 1) or transport.handle?(handle)
  end

  @modules Map.values(@transports)

  defp known?(module) when module in @modules, do: true
  defp known?(module), do: match?({:ok, ^module}, module(module))

  @doc false
  @spec expected() :: String.t()
  def expected do
    names = @transports |> Map.keys() |> Enum.sort() |> Enum.map_join(", ", &inspect/1)
    "one of #{names}, or a module implementing Mirage.Transport"
  end

  defp implements?(module) do
    behaviours = fn -> module.module_info(:attributes) |> Keyword.get_values(:behaviour) end

    Code.ensure_loaded?(module) and function_exported?(module, :call, 3) and
      Mirage.Transport in List.flatten(behaviours.())
  end

  @doc """
  The module a call goes to: the transport that made `image` (whatever the
  setting), else the one named by the call's `transport:` option, else the
  configured one. An image passed with a `transport:` naming another transport
  raises `ArgumentError`.
  """
  @spec pick!(module() | nil, Mirage.t() | nil, String.t()) :: module()
  def pick!(requested, image, function)

  def pick!(requested, %Mirage{transport: made_by}, function) do
    if requested in [nil, made_by] do
      made_by
    else
      raise ArgumentError,
            "Mirage.#{function}: the image was made by #{inspect(made_by)}, " <>
              "but transport: names #{inspect(requested)}; an image can only be used " <>
              "with the transport that made it"
    end
  end

  def pick!(nil, nil, _function), do: configured()
  def pick!(requested, nil, _function), do: requested

  # Atoms the core may put in a result term (see "Atoms must exist" above). Formats
  # and reasons come back as atoms the NIF made at load; these are decoded safe.
  @info_keys [:format, :width, :height, :frames, :orientation, :has_alpha, :mode]
  @formats_keys [:read, :write, :allowed]

  @doc false
  # The atoms kept for safe decoding; tables_test.exs compares them with Python.
  @spec term_atoms() :: %{info: [atom()], formats: [atom()]}
  def term_atoms, do: %{info: @info_keys, formats: @formats_keys}

  @doc """
  Decodes what `c:call/3` answered for `op`, the one place that does so.

    * `:from_bytes`, `:crop`, `:rotate`, `:flip`, `:auto_orient` -> `{:ok, image}`
    * `:thumbnail`, `:resize` -> `{:ok, bytes, image}`
    * `:to_bytes` -> `{:ok, bytes}`
    * `:info`, `:formats` -> `{:ok, term}` (the map of that operation)
    * `{:error, reason}` with a reason from `Mirage.Error.reasons/0` unchanged;
      `:released` unchanged.

  Anything else is logged with `Logger.error/1` and becomes
  `{:error, :internal_error}`.

      iex> Mirage.Transport.result(:to_bytes, {:ok, "bytes", nil, nil})
      {:ok, "bytes"}
      iex> Mirage.Transport.result(:to_bytes, {:error, :truncated_image})
      {:error, :truncated_image}
  """
  @spec result(op(), term()) ::
          {:ok, image()}
          | {:ok, binary(), image()}
          | {:ok, binary() | map()}
          | {:error, Mirage.Error.reason()}
          | :released
  def result(op, reply) do
    case decode(op, reply) do
      :unexpected ->
        Logger.error(
          "mirage: unexpected answer from the transport for #{inspect(op)}: " <>
            inspect(reply, limit: 8, printable_limit: 80)
        )

        {:error, :internal_error}

      decoded ->
        decoded
    end
  end

  @image_ops [:from_bytes, :crop, :rotate, :flip, :auto_orient]

  defp decode(op, {:ok, nil, image, nil}) when op in @image_ops,
    do: if(image?(image), do: {:ok, image}, else: :unexpected)

  defp decode(op, {:ok, bytes, image, nil}) when op in [:thumbnail, :resize] and is_binary(bytes),
    do: if(image?(image), do: {:ok, bytes, image}, else: :unexpected)

  defp decode(:to_bytes, {:ok, bytes, nil, nil}) when is_binary(bytes), do: {:ok, bytes}

  defp decode(:info, {:ok, nil, nil, %{} = info}) do
    if Enum.sort(Map.keys(info)) == Enum.sort(@info_keys) and
         info.format in Mirage.Options.formats(),
       do: {:ok, info},
       else: :unexpected
  end

  defp decode(:formats, {:ok, nil, nil, %{read: read, write: write} = term})
       when is_list(read) and is_list(write) do
    if Enum.sort(Map.keys(term)) == Enum.sort(@formats_keys),
      do: {:ok, term},
      else: :unexpected
  end

  defp decode(_op, {:error, reason} = error) do
    if reason in Mirage.Error.reasons(), do: error, else: :unexpected
  end

  defp decode(_op, :released), do: :released
  defp decode(_op, _other), do: :unexpected

  defp image?({_handle, format, width, height}),
    do: format in Mirage.Options.formats() and pos_integer?(width) and pos_integer?(height)

  defp image?(_other), do: false

  defp pos_integer?(value), do: is_integer(value) and value > 0
end
