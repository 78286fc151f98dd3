defmodule Mirage.Port.PoolTest do
  # The pool against test/fixtures/fake_port.py, a program that speaks the framing
  # and misbehaves on request: no Pillow, no Mirage package involved.
  use ExUnit.Case, async: true
  import ExUnit.CaptureLog

  alias Mirage.Port.Pool
  alias Mirage.Test.Wait

  @fake Path.expand("../../fixtures/fake_port.py", __DIR__)

  defp python do
    System.get_env("MIRAGE_PYTHON") || Path.expand(".venv/bin/python") ||
      System.find_executable("python3")
  end

  defp start_pool(mode, opts) do
    name = :"pool_#{System.unique_integer([:positive])}"
    opts = [name: name, program: {python(), [@fake | String.split(mode)], []}] ++ opts
    start_supervised!({Pool, opts}, id: name)
    name
  end

  defp call(pool, args \\ %{}), do: Mirage.Port.call(pool, :formats, nil, args)

  test "200 concurrent callers on a pool of 2 all get their answers" do
    pool = start_pool("echo", workers: 2)

    results =
      1..200
      |> Enum.map(fn _ -> Task.async(fn -> call(pool) end) end)
      |> Enum.map(&Task.await(&1, 30_000))

    assert Enum.all?(results, &(&1 == {:ok, nil, nil, :pong}))
    workers = Mirage.Port.workers(pool)
    assert length(workers) == 2
    assert Enum.sum(Enum.map(workers, & &1.served)) == 200
    assert Enum.all?(workers, &(&1.queue == 0 and not &1.busy and &1.restarts == 0))
  end

  test "workers/1 reports each worker's OS process, which really runs" do
    pool = start_pool("echo", workers: 3)
    workers = Mirage.Port.workers(pool)
    assert Enum.map(workers, & &1.index) == [0, 1, 2]

    for %{os_pid: os_pid} <- workers do
      assert is_integer(os_pid)
      # Between fork and exec the command line is still the launcher's.
      Wait.until(fn -> File.read!("/proc/#{os_pid}/cmdline") =~ "fake_port.py" end)
    end
  end

  defmodule Forward do
    @moduledoc false
    # A :logger handler that sends each event to the test process.
    def log(event, %{config: %{pid: pid}}), do: send(pid, {:logged, event})
  end

  test "the worker's log frames reach Logger with metadata mirage: :python" do
    pool = start_pool("echo", workers: 1)
    id = :"forward_#{System.unique_integer([:positive])}"
    :ok = :logger.add_handler(id, Forward, %{config: %{pid: self()}})
    on_exit(fn -> :logger.remove_handler(id) end)

    capture_log(fn -> assert {:ok, nil, nil, :pong} = call(pool) end)

    assert_receive {:logged,
                    %{level: :warning, msg: {:string, "fake worker served 0"}, meta: meta}}

    assert meta.mirage == :python
  end

  test "a full queue answers :overloaded at once; queued calls still get answers" do
    pool = start_pool("hang", workers: 1, queue: 2)
    # One call runs (forever), two wait: the queue is full.
    tasks = for _ <- 1..3, do: Task.async(fn -> call(pool, %{timeout: 60_000}) end)
    Wait.until(fn -> hd(Mirage.Port.workers(pool)).queue == 2 end)

    assert call(pool) == {:error, :overloaded}

    # Stopping the pool answers the waiting callers instead of leaving them hanging.
    capture_log(fn -> stop_supervised!(pool) end)
    assert Enum.map(tasks, &Task.await/1) == List.duplicate({:error, :worker_crashed}, 3)
  end

  test "queued calls run in the order they arrived" do
    # One worker; the answer is the id the pool gave the request as it sent it.
    pool = start_pool("order 0.1", workers: 1)
    first = Task.async(fn -> call(pool) end)
    Wait.until(fn -> hd(Mirage.Port.workers(pool)).busy end)

    # Each call is in the pool (queued, running or answered) before the next is made.
    received = fn ->
      [w] = Mirage.Port.workers(pool)
      w.queue + w.served + if(w.busy, do: 1, else: 0)
    end

    queued =
      for n <- 1..5 do
        task = Task.async(fn -> call(pool) end)
        Wait.until(fn -> received.() == n + 1 end)
        task
      end

    assert {:ok, nil, nil, 0} = Task.await(first)
    assert Enum.map(queued, &Task.await/1) == for(id <- 1..5, do: {:ok, nil, nil, id})
  end

  test "a call past its deadline answers :timeout; the worker is replaced" do
    pool = start_pool("hang", workers: 1)
    [%{os_pid: old}] = Mirage.Port.workers(pool)

    log = capture_log(fn -> assert call(pool, %{timeout: 100}) == {:error, :timeout} end)
    assert log =~ "passed its deadline"

    [%{os_pid: new, restarts: 1, busy: false}] = Mirage.Port.workers(pool)
    assert is_integer(new) and new != old
    Wait.until(fn -> not File.exists?("/proc/#{old}") end)
  end

  test "a queued call whose deadline passes is answered and never sent" do
    pool = start_pool("hang", workers: 1)
    running = Task.async(fn -> call(pool, %{timeout: 60_000}) end)
    Wait.until(fn -> hd(Mirage.Port.workers(pool)).busy end)

    assert call(pool, %{timeout: 50}) == {:error, :timeout}
    # The running call was not disturbed: its worker is the same and still busy.
    assert [%{busy: true, restarts: 0, queue: 0}] = Mirage.Port.workers(pool)
    capture_log(fn -> stop_supervised!(pool) end)
    assert Task.await(running) == {:error, :worker_crashed}
  end

  test "half a frame, then exit: :worker_crashed to that caller, a new worker after" do
    pool = start_pool("half", workers: 1)

    log = capture_log(fn -> assert call(pool) == {:error, :worker_crashed} end)
    assert log =~ "exited with status 0 during :formats"

    Wait.until(fn ->
      match?([%{os_pid: pid, restarts: 1}] when is_integer(pid), Mirage.Port.workers(pool))
    end)
  end

  test "a frame that is no term: the worker is killed, its caller gets :worker_crashed" do
    pool = start_pool("garbage", workers: 1)
    [%{os_pid: old}] = Mirage.Port.workers(pool)

    log = capture_log(fn -> assert call(pool) == {:error, :worker_crashed} end)
    assert log =~ "sent an invalid frame"
    Wait.until(fn -> not File.exists?("/proc/#{old}") end)
  end

  test "a reply with the right id and a body that is no term: :internal_error, the worker serves on" do
    pool = start_pool("corrupt", workers: 1)
    [%{os_pid: os_pid}] = Mirage.Port.workers(pool)

    log = capture_log(fn -> assert call(pool) == {:error, :internal_error} end)
    assert log =~ "unexpected reply to :formats"

    # The frame was whole, so the stream is intact: the same worker answers next.
    assert call(pool) == {:ok, nil, nil, :pong}
    assert [%{os_pid: ^os_pid, busy: false, served: 2, restarts: 0}] = Mirage.Port.workers(pool)
  end

  test "a caller that dies while its call is queued: the call is dropped, never run" do
    pool = start_pool("slow 0.5", workers: 1)
    first = Task.async(fn -> call(pool) end)
    Wait.until(fn -> hd(Mirage.Port.workers(pool)).busy end)
    {doomed, doomed_ref} = spawn_monitor(fn -> call(pool) end)
    Wait.until(fn -> hd(Mirage.Port.workers(pool)).queue == 1 end)
    last = Task.async(fn -> call(pool) end)
    Wait.until(fn -> hd(Mirage.Port.workers(pool)).queue == 2 end)

    Process.exit(doomed, :kill)
    assert_receive {:DOWN, ^doomed_ref, :process, ^doomed, :killed}
    # Its place in the queue goes at once, not when a worker reaches it.
    Wait.until(fn -> hd(Mirage.Port.workers(pool)).queue == 1 end)

    assert Task.await(first) == {:ok, nil, nil, :pong}
    assert Task.await(last) == {:ok, nil, nil, :pong}
    assert [%{served: 2, queue: 0, busy: false}] = Mirage.Port.workers(pool)
  end

  test "a worker crash answers only its own caller; queued calls run on the replacement" do
    # Two workers taking 2 s a call, both busy, two more calls queued; one worker is
    # killed in the middle of its call.
    pool = start_pool("slow 2", workers: 2)
    tasks = for _ <- 1..4, do: Task.async(fn -> call(pool) end)
    Wait.until(fn -> Enum.all?(Mirage.Port.workers(pool), & &1.busy) end)
    [%{os_pid: victim} | _] = Mirage.Port.workers(pool)

    capture_log(fn ->
      System.cmd("kill", ["-KILL", Integer.to_string(victim)])
      results = Enum.map(tasks, &Task.await(&1, 30_000))
      assert Enum.count(results, &(&1 == {:error, :worker_crashed})) == 1
      assert Enum.count(results, &(&1 == {:ok, nil, nil, :pong})) == 3
    end)

    assert [%{restarts: 1}, %{restarts: 0}] = Mirage.Port.workers(pool)
  end

  test "a program that cannot start: a readable error, no restart storm, calls answered" do
    log =
      capture_log(fn ->
        pool = start_pool("exit", workers: 1)
        # Three deaths without an answer make the slot failing; the pauses grow.
        Wait.until(fn -> hd(Mirage.Port.workers(pool)).restarts >= 3 end)
        assert call(pool, %{timeout: 60_000}) == {:error, :worker_crashed}
        Process.sleep(500)
        # Backoff: within about a second, a handful of attempts, not hundreds.
        assert hd(Mirage.Port.workers(pool)).restarts < 10
      end)

    assert log =~ "died 3 times in a row without answering (last: exit status 3)"
    assert log =~ "fake_port.py exit"
  end

  test "an executable that does not exist: a readable error and calls answered" do
    name = :"pool_#{System.unique_integer([:positive])}"
    program = {"/nonexistent/python", ["-m", "mirage.port"], []}

    log =
      capture_log(fn ->
        start_supervised!({Pool, name: name, workers: 1, program: program}, id: name)
        Wait.until(fn -> hd(Mirage.Port.workers(name)).restarts >= 2 end)
        assert call(name, %{timeout: 60_000}) == {:error, :worker_crashed}
      end)

    assert log =~ "/nonexistent/python cannot be run"
  end

  test "an image held by a dead worker answers :worker_crashed; releasing it is :ok" do
    pool = start_pool("echo", workers: 1)
    [%{os_pid: os_pid}] = Mirage.Port.workers(pool)
    # A handle of this pool's slot 0 for an incarnation that no longer runs.
    stale = {:mirage_port, pool, 0, make_ref(), 1}
    assert Mirage.Port.call(pool, :crop, stale, %{}) == {:error, :worker_crashed}
    assert Mirage.Port.release(stale) == :ok
    assert [%{os_pid: ^os_pid, served: 0}] = Mirage.Port.workers(pool)
  end

  test "settings are checked" do
    assert_raise ArgumentError, ~r/workers: must be a positive integer/, fn ->
      Pool.config(workers: 0)
    end

    assert_raise ArgumentError, ~r/max_memory: must be/, fn -> Pool.config(max_memory: :lots) end
    assert Pool.config(workers: 2)[:workers] == 2
  end
end
