defmodule Mirage.Port do
  @moduledoc """
  The port transport (`transport: :port`): every operation runs in a pool of
  separate OS processes, each `python -m mirage.port`, instead of in the VM. A
  decoder crash, a runaway allocation or a file that takes forever costs one worker
  process, never the VM, and a deadline really stops the work. The VM running only
  this transport never starts an interpreter inside itself.

  ## Configuration

      config :mirage, :port,
        workers: 4,                 # OS processes (default: dirty CPU schedulers)
        queue: 1_000,               # calls waiting for a worker (default 1 000)
        max_memory: 2_000_000_000,  # address-space cap of each worker, bytes
        max_images: 1_000,          # images one worker may hold (default 1 000)
        max_held: 1_000_000_000     # their pixels' bytes (default max_memory / 2)

  A call's deadline is its `timeout:` option, whose default is the one every
  transport shares: `config :mirage, timeout: ms` (30 s unless set).

  The pool (`Mirage.Port.Pool`) starts under Mirage's supervisor when the
  application starts with `config :mirage, transport: :port`, else on the first
  call that uses this transport. `Mirage.Python` finds the interpreter, as for the
  NIF (`MIRAGE_PYTHON`, `config :mirage, python: path`, else the one recorded at
  build time); it runs the `mirage` package staged in `priv/python`, from that
  directory.

  ## What callers see
    * Requests wait in one first-in, first-out queue for an idle worker; when
      `queue` requests already wait, a call returns `{:error, :overloaded}` at once.
      A call whose caller exits while it waits is dropped, never sent to a worker
      (one already running finishes, its answer discarded).
    * Every call has a deadline (its `timeout:` option), counted from the moment
      the pool receives it, queueing included. When it passes, the call returns
      `{:error, :timeout}`; if a worker was running it, that worker's OS process is
      killed (SIGKILL) and a fresh one takes its place.
    * A worker that dies while running a call (a crash, a signal, an invalid frame)
      answers `{:error, :worker_crashed}` to that call only; queued calls run on the
      other workers or on its replacement. Replacements of a worker that keeps dying
      without answering anything are started after a growing pause (up to 10 s);
      after three such deaths in a row the reason is logged, and while every worker
      is in that state calls return `{:error, :worker_crashed}` at once instead of
      waiting for their deadline.
    * Memory: each worker runs with its address space capped at `max_memory`
      (default: 16 bytes per pixel of the pixel budget, plus 1 GiB for the
      interpreter and Pillow). An operation that needs more fails with
      `{:error, :too_many_pixels}` when Python sees the failed allocation (a
      `MemoryError`); if a C library aborts on it instead, the worker dies and the
      call returns `{:error, :worker_crashed}`. Either way only that worker is
      affected.
    * Lines the workers print or log reach `Logger` with metadata `mirage: :python`.

  ## Held images
  An image (`from_bytes/2`, and the results of `thumbnail/4`, `resize/4`, `crop/5`,
  `rotate/3`, `flip/2`, `auto_orient/1`) stays in the worker that made it, owned by
  the process that made the call. It is released by `Mirage.release/1`
  (idempotent), or when its owner process exits (the pool monitors owners), and
  every operation on it runs in that worker. Each worker caps how many images it
  holds (`max_images`) and their pixels' bytes (`max_held`); past either cap, a call
  that would hold one more returns `{:error, :overloaded}`. Note that `thumbnail/4`
  and `resize/4` hold their result too: a long-lived process should release the
  images it no longer needs. An image whose worker died (or was killed at a deadline)
  is gone: operations on it return `{:error, :worker_crashed}` and `release/1`
  returns `:ok`. A chain of operations works on the pixels the worker holds, so it
  gives the same bytes as on `:nif`.
  """

  alias Mirage.Port.{Pool, Worker}
  require Logger

  @transport_reasons [:timeout, :worker_crashed, :overloaded]

  @typedoc "An image held by a port worker: pool, worker slot, worker incarnation, Python handle."
  @type handle ::
          {:mirage_port, GenServer.server(), non_neg_integer(), reference(), integer()}

  @doc """
  One map per worker of the pool: `:index` (its slot), `:os_pid` (`nil` while it is
  being restarted), `:busy` (running a call), `:served` (calls answered by this
  slot's workers), `:restarts` (how many times this slot's worker was replaced),
  and `:queue`, the number of calls waiting for a worker (the same for every map:
  the pool has one queue).
  """
  @spec workers(GenServer.server()) :: [map()]
  def workers(pool \\ Pool) do
    %{queue: queue, workers: workers} = Pool.info(pool)
    Enum.map(workers, &Map.put(&1, :queue, queue))
  end

  @doc """
  Starts the default pool under Mirage's supervisor unless it runs already; returns
  its pid.
  """
  @spec ensure_started() :: pid()
  def ensure_started, do: Mirage.Transport.ensure_child(Pool)

  @doc """
  Runs `op` through `pool` and decodes the reply into the terms of
  `Mirage.Transport` (`source` is bytes, `nil` or a `t:handle/0` of that pool).
  """
  @spec call(GenServer.server(), atom(), binary() | handle() | nil, map()) ::
          {:ok, binary() | nil, tuple() | nil, term()} | {:error, atom()} | :released
  def call(pool, op, source, args) do
    {pool, source} =
      case source do
        {:mirage_port, image_pool, slot, incarnation, handle}
        when is_integer(slot) and is_reference(incarnation) and is_integer(handle) ->
          {image_pool, {slot, incarnation, handle}}

        bytes when is_binary(bytes) or bytes == nil ->
          {pool, bytes}

        other ->
          raise ArgumentError, "not an image of the port transport: #{inspect(other, limit: 5)}"
      end

    case Pool.call(pool, op, source, args, Map.get(args, :timeout)) do
      {:frame, frame, origin} -> decode(frame, op, origin)
      {:error, _} = error -> error
    end
  end

  @doc """
  How many images the workers of `pool` hold now: the sum of each running worker's
  answer to `:live_handles` (a worker that dies meanwhile counts none).
  """
  @spec live_handles(GenServer.server()) :: non_neg_integer()
  def live_handles(pool \\ Pool) do
    pool
    |> Pool.running()
    |> Enum.map(fn index ->
      case Pool.call(pool, :live_handles, {:slot, index}, %{}, nil) do
        {:frame, frame, _origin} ->
          case Worker.decode_reply(frame) do
            {_id, {:ok, nil, nil, count}} when is_integer(count) and count >= 0 -> count
            _ -> 0
          end

        {:error, _} ->
          0
      end
    end)
    |> Enum.sum()
  end

  @doc "Releases a held image; `:ok` also when it is gone already."
  @spec release(handle()) :: :ok
  def release({:mirage_port, pool, slot, incarnation, handle}),
    do: Pool.release(pool, slot, incarnation, handle)

  def release(other),
    do: raise(ArgumentError, "not an image of the port transport: #{inspect(other, limit: 5)}")

  defp decode(frame, op, {pool, slot, incarnation}) do
    # Replies are decoded safely (no new atoms); the atoms they may hold (formats,
    # reasons, info's keys) are those Mirage's own code names, so load it first.
    Code.ensure_loaded(Mirage)

    case Worker.decode_reply(frame) do
      {_id, {:ok, bytes, image, term}} when is_binary(bytes) or bytes == nil ->
        case image do
          nil ->
            {:ok, bytes, nil, term}

          {handle, format, width, height} when is_integer(handle) ->
            {:ok, bytes, {{:mirage_port, pool, slot, incarnation, handle}, format, width, height},
             term}

          _ ->
            invalid(op, frame)
        end

      {_id, {:error, reason}} when is_atom(reason) ->
        if reason in Mirage.Error.reasons() or reason in @transport_reasons,
          do: {:error, reason},
          else: invalid(op, frame)

      {_id, :released} ->
        :released

      _ ->
        invalid(op, frame)
    end
  end

  defp invalid(op, frame) do
    Logger.error(
      "Mirage.Port: unexpected reply to #{inspect(op)} " <>
        "(#{byte_size(frame)} bytes: #{inspect(frame, limit: 20)})"
    )

    {:error, :internal_error}
  end
end
