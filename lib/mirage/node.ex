defmodule Mirage.Node do
  @moduledoc """
  The node transport (`transport: :node`): operations run on Python worker nodes,
  `python -m mirage.node` processes that join the cluster as hidden Erlang nodes
  and are reached through the VM's own distribution (docs/node.md). Workers may
  run on other machines, or be started by Mirage itself on this one.

  ## Configuration

      config :mirage, :node,
        nodes: [:"mirage1@host2", :"mirage2@host3"],  # workers started elsewhere
        spawn: 2,              # workers Mirage starts here as OS processes (default 0)
        cookie: :secret,       # default: this VM's cookie (Node.get_cookie/0)
        max_in_flight: 64,     # calls sent to one worker at a time (default 64)
        queue: 1_000,          # calls waiting in the pool for room; more are :overloaded
        jobs: 4,               # image threads of each spawned worker (default: CPUs)
        max_handles: 10_000    # held images each spawned worker keeps at most

  A call's deadline is its `timeout:` option, whose default is the one every
  transport shares: `config :mirage, timeout: ms` (30 s unless set). A `timeout:`
  (or any unknown key) in `config :mirage, :node` raises `ArgumentError` when the
  pool starts.

  The pool (`Mirage.Node.Pool`) starts under Mirage's supervisor when the
  application starts with `config :mirage, transport: :node`, else on the first call
  that uses this transport.

  ## The VM must be distributed
  The workers are reached through distribution, so this VM needs a node name (`elixir
  --sname app -S mix run`, `--name app@host`, a release's `RELEASE_NODE`, or
  `Node.start/2`) and EPMD running. Without one, calls answer
  `{:error, :not_distributed}` and a log line says how to start it; once the VM is
  distributed, the next call starts the workers.

  ## Workers Mirage starts (`spawn: n`)
  Each is `python -m mirage.node` (the interpreter and package found by
  `Mirage.Python`), named `mirage_<this node's name>_<i>@<this node's host>`,
  listening on the address this node's host name resolves to (loopback for
  `@127.0.0.1` or `@localhost`), with the cookie in a file only this user can read
  (never on the command line). A worker that exits is started again, after a pause
  that grows while it keeps failing; one that outlives nothing: it stops when the
  VM does, even when the VM is killed.

  ## What callers see
    * Each call goes to the connected worker with the fewest calls in flight; a
      call on a held image goes to the worker holding it. A worker is sent at most
      `max_in_flight` calls at a time (keep it within the node's own `--max-queue`,
      64 per job thread by default); further calls wait in the pool, first in first
      out, within their deadline, and when `queue` calls already wait a call answers
      `{:error, :overloaded}` at once. While no worker is connected but some are
      starting or being connected to, calls wait the same way; when none can be
      reached, they answer `{:error, :worker_crashed}` at once.
    * A worker that goes away (its node goes down, its process dies, the network
      drops) answers `{:error, :worker_crashed}` to the calls in flight on it, and
      only to those. Calls are not retried on another node: an operation may have
      been half done, and the caller knows best whether to try again. The pool keeps
      reconnecting (and restarts the workers it spawned), and uses a worker again as
      soon as it is back.
    * Deadlines: when a call's `timeout:` passes, it answers `{:error, :timeout}`.
      The worker is not killed (it serves other calls at the same time); the
      deadline also travels to the core, which stops cooperatively, and a late
      answer is dropped (an image it made is released at once).
    * Reasons come only from `Mirage.Error.reasons/0`: answers from a worker are
      decoded by `Mirage.Transport.result/2`, and an image whose handle is not an
      integer is refused as `:internal_error`. Decoding uses only atoms that exist.

  ## Held images
  An image stays in the worker that made it, owned by the process that made the
  call. It is released by `Mirage.release/1` (idempotent), or when its owner exits
  (the pool monitors owners and sends the worker a `{:release, handles}` cast). The
  image's handle names the worker node and the connection (incarnation) it was made
  on: when that connection drops, the worker frees the images (it releases
  everything a peer made when the peer goes), so operations on them answer
  `{:error, :worker_crashed}` and `release/1` answers `:ok`, also after the worker
  has come back.
  """

  alias Mirage.Node.Pool
  require Logger

  @typedoc "An image held by a worker node: pool, node, incarnation, Python handle."
  @type handle :: {:mirage_node, GenServer.server(), node(), reference(), integer()}

  @doc """
  One map per worker of the pool: `:node`, `:connected` (a connection is up now),
  `:in_flight` (calls sent to it and not answered yet), `:served` (calls it
  answered), `:spawned` (Mirage started it) and `:os_pid` (a spawned worker's OS
  pid while it runs, else `nil`).
  """
  @spec workers(GenServer.server()) :: [map()]
  def workers(pool \\ nil), do: Pool.workers(pool || ensure_started())

  @doc "Starts the default pool under Mirage's supervisor unless it runs; returns its pid."
  @spec ensure_started() :: pid()
  def ensure_started, do: Mirage.Transport.ensure_child(Pool)

  @doc """
  Runs `op` on a worker of `pool` and answers in the terms of `Mirage.Transport`
  (`source` is bytes, `nil` or a `t:handle/0` of that pool).
  """
  @spec call(GenServer.server(), atom(), binary() | handle() | nil, map()) ::
          Mirage.Transport.reply()
  def call(pool, op, source, args) do
    {pool, target, python_source} =
      case source do
        {:mirage_node, image_pool, node, incarnation, handle}
        when is_atom(node) and is_reference(incarnation) and is_integer(handle) ->
          {image_pool, {node, incarnation}, {:handle, handle}}

        bytes when is_binary(bytes) or bytes == nil ->
          {pool, nil, bytes}

        other ->
          raise ArgumentError, "not an image of the node transport: #{inspect(other, limit: 5)}"
      end

    timeout = Map.get(args, :timeout) || Application.get_env(:mirage, :timeout, 30_000)
    deadline = if timeout != :infinity, do: System.monotonic_time(:millisecond) + timeout
    ref = make_ref()

    case Pool.run(pool, target, timeout, {ref, op, {:call, op, python_source, args}}) do
      {:ok, runner} -> await(runner, ref, deadline)
      {:error, _} = error -> error
    end
  end

  # The runner answers {ref, reply}; after the deadline the caller tells it to give
  # up and takes whichever comes first, the answer or the acknowledgement, so no
  # message for this call is left behind.
  defp await(runner, ref, deadline) do
    monitor = Process.monitor(runner)

    wait =
      if deadline, do: max(deadline - System.monotonic_time(:millisecond), 0), else: :infinity

    receive do
      {^ref, reply} ->
        Process.demonitor(monitor, [:flush])
        reply

      {:DOWN, ^monitor, :process, _, _} ->
        {:error, :worker_crashed}
    after
      wait ->
        send(runner, {:abandon, ref})

        receive do
          {^ref, :abandoned} ->
            Process.demonitor(monitor, [:flush])
            {:error, :timeout}

          {^ref, reply} ->
            Process.demonitor(monitor, [:flush])
            reply

          {:DOWN, ^monitor, :process, _, _} ->
            {:error, :timeout}
        end
    end
  end

  @doc "Releases a held image; `:ok` also when it or its worker is gone."
  @spec release(handle()) :: :ok
  def release({:mirage_node, pool, node, incarnation, handle})
      when is_atom(node) and is_reference(incarnation) and is_integer(handle),
      do: Pool.release(pool, node, incarnation, handle)

  def release(other),
    do: raise(ArgumentError, "not an image of the node transport: #{inspect(other, limit: 5)}")

  @doc "How many images the workers of `pool` hold for live owners, as the pool counts them."
  @spec live_handles(GenServer.server()) :: non_neg_integer()
  def live_handles(pool \\ nil), do: Pool.live_handles(pool || ensure_started())
end
