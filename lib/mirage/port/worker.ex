defmodule Mirage.Port.Worker do
  @moduledoc """
  One port worker: an OS process running `python -m mirage.port`, reached through an
  Erlang port with `{:packet, 4}` frames of external term format on file descriptors
  3 and 4 (`:nouse_stdio`, so nothing the program or a C library prints on stdout can
  corrupt the stream).

  This module is the data side of a worker (open, frame, parse, kill); the process
  that owns the port and decides what to do is `Mirage.Port.Pool`.

  Frames, VM to worker:
    * `{id, op, source, args, owner}`: a request; `source` is the encoded bytes,
      `{:handle, integer}` for an image this worker holds, or `nil`. The reply is
      `{id, reply}` with the NIF's reply terms.
    * `{:release, [handle]}` and `{:release_owner, pid}`: no reply.

  Worker to VM, besides replies: `{:log, level, line}` with `level` in `0..3`
  (debug, info, warning, error).
  """

  require Logger

  @enforce_keys [:port, :os_pid, :incarnation]
  defstruct [:port, :os_pid, :incarnation, next_id: 0]

  @type t :: %__MODULE__{
          port: port(),
          os_pid: non_neg_integer() | nil,
          incarnation: reference(),
          next_id: non_neg_integer()
        }

  @typedoc "What a frame from the worker is."
  @type frame ::
          {:reply, non_neg_integer(), binary()}
          | {:log, Logger.level(), binary()}
          | :invalid

  # Ids wrap before leaving the 32-bit signed integer encoding.
  @id_limit 0x7FFFFFFF

  @doc """
  Starts the program described by `program` (`{executable, args, env}`, see
  `program/1`). Returns `{:error, reason}` when the executable cannot be run at all.

  It runs in the directory named by `PYTHONPATH` when `env` has one: `python -m`
  puts the working directory first on `sys.path`, and the VM's (a source checkout,
  say) may hold another `mirage` package.
  """
  @spec open({String.t(), [String.t()], [{String.t(), String.t()}]}) ::
          {:ok, t()} | {:error, term()}
  def open({executable, args, env}) do
    options = [
      {:packet, 4},
      :nouse_stdio,
      :binary,
      :exit_status,
      {:args, args},
      {:cd, cwd(env)},
      {:env, Enum.map(env, fn {k, v} -> {String.to_charlist(k), String.to_charlist(v)} end)}
    ]

    port = Port.open({:spawn_executable, executable}, options)

    # nil: it exited already; its exit status is on its way to the owner.
    os_pid =
      case Port.info(port, :os_pid) do
        {:os_pid, os_pid} -> os_pid
        nil -> nil
      end

    {:ok, %__MODULE__{port: port, os_pid: os_pid, incarnation: make_ref()}}
  rescue
    error in ErlangError -> {:error, error.original}
    error in ArgumentError -> {:error, Exception.message(error)}
  end

  defp cwd(env) do
    case List.keyfind(env, "PYTHONPATH", 0) do
      {_, path} -> path |> String.split(":") |> hd()
      nil -> File.cwd!()
    end
  end

  @doc """
  The command line of the real worker program: the interpreter and the directory
  holding the `mirage` package come from `Mirage.Python`; `{:error, message}` when
  it finds no usable interpreter.
  """
  @spec program(keyword()) ::
          {:ok, {String.t(), [String.t()], [{String.t(), String.t()}]}} | {:error, String.t()}
  def program(config) do
    with {:ok, %{python: python, path: path}} <- Mirage.Python.interpreter() do
      args =
        ["-m", "mirage.port"] ++
          Enum.flat_map(
            [max_memory: "--max-memory", max_images: "--max-handles", max_held: "--max-bytes"],
            fn {key, flag} -> [flag, Integer.to_string(config[key])] end
          )

      {:ok, {python, args, [{"PYTHONPATH", path}]}}
    end
  end

  @doc """
  Sends a request; returns the worker with its id counter advanced and the id used,
  or `:closed` when the port closed meanwhile (its exit status is on its way). The
  source bytes go to the port as their own part of an iolist, never copied into a
  larger binary.
  """
  @spec request(t(), atom(), binary() | {:handle, integer()} | nil, map(), pid()) ::
          {:ok, t(), non_neg_integer()} | :closed
  def request(%__MODULE__{next_id: id} = worker, op, source, args, owner) do
    source_part =
      if is_binary(source),
        do: [<<109, byte_size(source)::32>>, source],
        else: external(source)

    frame = [<<131, 104, 5>>, external(id), external(op), source_part, external(args)]
    Port.command(worker.port, [frame | external(owner)])
    {:ok, %{worker | next_id: if(id >= @id_limit, do: 0, else: id + 1)}, id}
  rescue
    ArgumentError -> :closed
  end

  @doc "Sends a frame that has no reply (`{:release, handles}`, `{:release_owner, pid}`)."
  @spec notify(t(), {:release, [integer()]} | {:release_owner, pid()}) :: :ok
  def notify(%__MODULE__{port: port}, message) do
    Port.command(port, :erlang.term_to_binary(message))
    :ok
  catch
    # The port closed meanwhile: the images it held went with it.
    :error, :badarg -> :ok
  end

  @doc """
  Classifies a frame from the worker without decoding a reply's body: the id is read
  from the frame's head, and the body is decoded by the caller that waits for it.
  """
  @spec parse(binary()) :: frame()
  def parse(<<131, 104, 2, 97, id, _::binary>> = frame), do: {:reply, id, frame}

  def parse(<<131, 104, 2, 98, id::signed-32, _::binary>> = frame) when id >= 0,
    do: {:reply, id, frame}

  def parse(<<131, 104, 3, _::binary>> = frame) do
    case safe_decode(frame) do
      {:log, level, line} when level in 0..3 and is_binary(line) ->
        {:log, Enum.at([:debug, :info, :warning, :error], level), line}

      _ ->
        :invalid
    end
  end

  def parse(frame) do
    # Any other valid encoding of {id, reply}; only small frames take this path.
    case safe_decode(frame) do
      {id, _reply} when is_integer(id) and id >= 0 -> {:reply, id, frame}
      _ -> :invalid
    end
  end

  @doc "Decodes a reply frame `{id, reply}`; `:invalid` if it is not one."
  @spec decode_reply(binary()) :: {non_neg_integer(), term()} | :invalid
  def decode_reply(frame) do
    case safe_decode(frame) do
      {id, reply} when is_integer(id) -> {id, reply}
      _ -> :invalid
    end
  end

  @doc """
  Stops the worker at once: SIGKILL to its OS process (it may be deep in a decoder
  and deaf to anything else), then the port is closed.
  """
  @spec kill(t()) :: :ok
  def kill(%__MODULE__{port: port, os_pid: os_pid}) do
    # Before closing: once the port is closed the VM reaps the process and its pid
    # could be reused.
    case System.find_executable("kill") do
      kill when is_binary(kill) and is_integer(os_pid) ->
        System.cmd(kill, ["-KILL", Integer.to_string(os_pid)], stderr_to_stdout: true)

      _ ->
        :ok
    end

    close(port)
  end

  @doc "Closes the port: the program sees end of input and exits."
  @spec close(port() | t()) :: :ok
  def close(%__MODULE__{port: port}), do: close(port)

  def close(port) when is_port(port) do
    Port.close(port)
    :ok
  rescue
    ArgumentError -> :ok
  end

  defp external(term) do
    <<131, rest::binary>> = :erlang.term_to_binary(term)
    rest
  end

  defp safe_decode(frame) do
    :erlang.binary_to_term(frame, [:safe])
  rescue
    ArgumentError -> :invalid
  end
end
