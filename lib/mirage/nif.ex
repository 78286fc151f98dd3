defmodule Mirage.NIF do
  # Stubs for priv/mirage_nif.so (c_src/). Callers use Mirage, which validates
  # every argument first; the C side re-checks types and answers badarg.
  #
  # Loading the library starts Python inside the VM, so it is explicit, never a side
  # effect of loading this module: load/0 runs on the first call of any stub, or from
  # Mirage.Application when the :nif transport is configured. The one exception is
  # code reloading: when an earlier instance of this module had loaded the library,
  # @on_load loads it again at once, so that the NIF's `upgrade` takes its images over.
  @moduledoc false

  @on_load :reload

  @doc false
  def reload do
    if :persistent_term.get({__MODULE__, :loaded}, false) do
      _ = load()
    end

    # Never fail the module's load: a failed reload is retried by the first call.
    :ok
  end

  @doc """
  Loads the library if this instance of the module has not, and waits for a load
  another process is doing. Concurrent first callers are serialised by a lock.
  """
  @spec load() :: :ok | {:error, {:mirage_nif, String.t()}}
  def load do
    if loaded?() do
      :ok
    else
      :global.trans({{__MODULE__, :load}, self()}, &load_locked/0, [node()])
    end
  end

  defp load_locked do
    with false <- loaded?(),
         {:ok, path, info} <- Mirage.NIF.Loader.prepare(),
         # load_nif must be called from this module; the Loader prepares and explains.
         :ok <- Mirage.NIF.Loader.result(:erlang.load_nif(path, info)) do
      :persistent_term.put({__MODULE__, :loaded}, true)
      # Results are decoded safe: the atoms they may hold must exist before any call.
      {:module, _} = Code.ensure_loaded(Mirage.Transport)
      :ok
    else
      true ->
        :ok

      {:error, {:mirage_nif, message}} = error ->
        # Also without Logger running.
        IO.puts(:stderr, "mirage: the NIF was not loaded: " <> message)
        error
    end
  end

  # Replaced by the library: true in a module instance that has loaded it.
  @doc false
  @spec loaded?() :: boolean()
  def loaded?, do: false

  @typep result ::
           {:ok, binary() | nil, {reference(), atom(), pos_integer(), pos_integer()} | nil,
            term()}
           | {:error, atom()}
           | :released

  # Each stub loads the library and calls itself again, which is then the NIF:
  # load/0 returns :ok only once loaded?/0, and so every stub, is replaced.
  @doc false
  @spec call_io(atom(), reference() | binary() | nil, binary()) :: result()
  def call_io(op, source, args) do
    load!()
    call_io(op, source, args)
  end

  @doc false
  @spec call_cpu(atom(), reference() | binary() | nil, binary()) :: result()
  def call_cpu(op, source, args) do
    load!()
    call_cpu(op, source, args)
  end

  # A normal-scheduler NIF: it only queues the handle for the reaper thread. A
  # handle exists only once the library is loaded, so no load here.
  @spec release(reference()) :: :ok
  def release(_image), do: :erlang.nif_error(:nif_not_loaded)

  @spec live_handles() :: non_neg_integer()
  def live_handles do
    load!()
    live_handles()
  end

  # A normal-scheduler NIF (no Python): how many calls stopped early because their
  # caller had died (the cooperative check at each safe point).
  @spec abandoned_calls() :: non_neg_integer()
  def abandoned_calls do
    load!()
    abandoned_calls()
  end

  @doc "The atom tables the library made at load: reasons and formats, by index."
  @spec atom_tables() :: %{reasons: [atom()], formats: [atom()]}
  def atom_tables do
    load!()
    atom_tables()
  end

  defp load!() do
    case load() do
      :ok -> :ok
      {:error, {:mirage_nif, message}} -> raise "mirage: the NIF was not loaded: " <> message
    end
  end

  # A normal-scheduler NIF (no Python): Mirage.LogForwarder acknowledges each line it
  # logged; answers how many lines the NIF dropped since the last report. Only called
  # for lines the loaded NIF sent.
  @spec log_delivered() :: non_neg_integer()
  def log_delivered, do: :erlang.nif_error(:nif_not_loaded)
end
