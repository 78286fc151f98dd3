defmodule Mirage.NodeTest do
  # The node transport with real worker nodes (python -m mirage.node) on loopback:
  # dispatch, a worker dying mid-request, deadlines, held images and their owners,
  # cookies both ways, hidden nodes, requests the worker must refuse. Not async: it
  # kills workers and counts what they serve.
  use ExUnit.Case, async: false
  import ExUnit.CaptureLog

  alias Mirage.Node.{Pool, Worker}
  alias Mirage.Test.Distributed

  @moduletag :node
  if reason = Mirage.ConformanceCase.unavailable(:node), do: @moduletag(skip: reason)

  @pool :node_test_pool
  @sample File.read!("samples/rocket.jpg")

  setup_all do
    prefix = "nodetest_#{System.pid()}_"
    start_supervised!({Pool, name: @pool, spawn: 2, prefix: prefix, jobs: 2})
    wait_connected(2)
    # A call that takes a while on a worker: a 36 MP JPEG filled to 25 MP and encoded.
    {:ok, big, _} = Mirage.resize(Mirage.from_bytes!(@sample, transport: :nif), 6000, 6000)
    %{big: big}
  end

  defp wait_connected(count) do
    Distributed.wait_until(fn ->
      workers = Mirage.Node.workers(@pool)
      Enum.count(workers, & &1.connected) == count and workers
    end)
  end

  defp args(opts \\ []), do: opts |> Mirage.Options.validate!([], "test") |> elem(1)

  defp call(op, source, extra \\ %{}, opts \\ []),
    do: Mirage.Node.call(@pool, op, source, Map.merge(args(opts), extra))

  defp slow(big, opts \\ []), do: call(:thumbnail, big, %{width: 5000, height: 5000}, opts)

  describe "workers" do
    test "are hidden nodes: in Node.list(:hidden), never in Node.list()" do
      for %{node: node} <- wait_connected(2) do
        assert node in Node.list(:hidden)
        refute node in Node.list()
      end
    end

    test "workers/0 describes each spawned worker" do
      for worker <- wait_connected(2) do
        assert %{connected: true, spawned: true, in_flight: 0} = worker
        assert is_integer(worker.os_pid) and is_integer(worker.served)
        assert {_, 0} = System.cmd("kill", ["-0", Integer.to_string(worker.os_pid)])
      end
    end

    test "calls go to the least-loaded worker", %{big: big} do
      tasks = for _ <- 1..2, do: Task.async(fn -> slow(big) end)

      busy =
        Distributed.wait_until(fn ->
          workers = Mirage.Node.workers(@pool)
          Enum.all?(workers, &(&1.in_flight == 1)) and workers
        end)

      assert length(busy) == 2
      assert [{:ok, _, _, nil}, {:ok, _, _, nil}] = Task.await_many(tasks, 60_000)
    end
  end

  describe "runners" do
    test "are reused: sequential calls from many processes come from a few pids" do
      for _ <- 1..30 do
        assert {:ok, nil, nil, %{read: _}} = Task.await(Task.async(fn -> call(:formats, nil) end))
      end

      # The pool's links: its supervisor, the workers' ports and its runners, which
      # stay at the peak of concurrent calls (two in these tests), not one per call.
      {:links, links} = Process.info(Process.whereis(@pool), :links)
      assert (Enum.count(links, &is_pid/1) - 1) in 1..3
    end
  end

  describe "a worker that dies" do
    test "answers :worker_crashed to its callers only, and is started and used again",
         %{big: big} do
      [_, _] = wait_connected(2)
      tasks = for _ <- 1..2, do: Task.async(fn -> slow(big) end)

      [victim, other] =
        Distributed.wait_until(fn ->
          workers = Mirage.Node.workers(@pool)
          Enum.all?(workers, &(&1.in_flight == 1)) and workers
        end)

      log =
        capture_log(fn ->
          Worker.kill(victim.os_pid)
          results = Task.await_many(tasks, 60_000)
          assert {:error, :worker_crashed} in results
          assert Enum.count(results, &match?({:ok, _, _, nil}, &1)) == 1
        end)

      assert log =~ "#{victim.node}"

      # Replaced by a new OS process under the same name, which serves calls again.
      back =
        Distributed.wait_until(fn ->
          Enum.find(wait_connected(2), &(&1.node == victim.node and &1.os_pid != victim.os_pid))
        end)

      # Idle workers are picked by fewest calls served, and `served` counts over
      # restarts: the other worker may first take as many calls as the victim is
      # ahead by (earlier tests), then the victim gets one.
      served = back.served

      assert Enum.any?(1..100, fn _ ->
               assert {:ok, nil, nil, %{read: _}} = call(:formats, nil)
               Enum.find(Mirage.Node.workers(@pool), &(&1.node == victim.node)).served > served
             end)

      assert Enum.find(Mirage.Node.workers(@pool), &(&1.node == other.node)).connected
    end

    test "takes its held images with it: they answer :worker_crashed, release is :ok" do
      assert {:ok, nil, {handle, :jpg, 640, 427}, nil} = call(:from_bytes, @sample)
      {:mirage_node, @pool, node, _, _} = handle
      worker = Enum.find(Mirage.Node.workers(@pool), &(&1.node == node))
      assert Mirage.Node.live_handles(@pool) >= 1

      capture_log(fn ->
        Worker.kill(worker.os_pid)

        Distributed.wait_until(fn ->
          not Enum.find(Mirage.Node.workers(@pool), &(&1.node == node)).connected
        end)
      end)

      assert call(:to_bytes, handle) == {:error, :worker_crashed}
      assert Mirage.Node.release(handle) == :ok
      wait_connected(2)
      # Also once the worker is back: that image is gone for good.
      assert call(:to_bytes, handle) == {:error, :worker_crashed}
      assert Mirage.Node.live_handles(@pool) == 0
    end
  end

  describe "config" do
    test "an unknown key in config :mirage, :node raises, a timeout pointing to the shared one" do
      saved = Application.get_env(:mirage, :node)

      try do
        Application.put_env(:mirage, :node, spawn: 1, timeout: 5_000)
        error = assert_raise ArgumentError, fn -> Pool.config() end
        assert error.message =~ "config :mirage, timeout: ms"
        Application.put_env(:mirage, :node, spwan: 1)
        error = assert_raise ArgumentError, fn -> Pool.config() end
        assert error.message =~ "unknown key :spwan"
        Application.put_env(:mirage, :node, spawn: 1, jobs: 2)
        assert Pool.config(name: :x)[:jobs] == 2
      after
        if saved,
          do: Application.put_env(:mirage, :node, saved),
          else: Application.delete_env(:mirage, :node)
      end
    end
  end

  describe "backpressure" do
    test "calls beyond max_in_flight wait in the pool; beyond queue they are :overloaded",
         %{big: big} do
      start_supervised!(
        {Pool, name: :narrow_pool, spawn: 1, max_in_flight: 1, queue: 1},
        id: :narrow
      )

      Distributed.wait_until(fn ->
        match?([%{connected: true}], Mirage.Node.workers(:narrow_pool))
      end)

      slow = Map.merge(args(), %{width: 5000, height: 5000})
      first = Task.async(fn -> Mirage.Node.call(:narrow_pool, :thumbnail, big, slow) end)

      Distributed.wait_until(fn ->
        match?([%{in_flight: 1}], Mirage.Node.workers(:narrow_pool))
      end)

      second = Task.async(fn -> Mirage.Node.call(:narrow_pool, :info, @sample, args()) end)
      # The second waits in the pool (the worker never sees more than one call)...
      Distributed.wait_until(fn -> :sys.get_state(:narrow_pool).waiting != [] end)
      # ...and the queue holds one: a third is refused at once.
      assert Mirage.Node.call(:narrow_pool, :formats, nil, args()) == {:error, :overloaded}
      assert [%{in_flight: 1}] = Mirage.Node.workers(:narrow_pool)
      assert {:ok, _, _, nil} = Task.await(first, 60_000)
      assert {:ok, nil, nil, %{format: :jpg}} = Task.await(second, 60_000)
      assert [%{in_flight: 0, served: 2}] = Mirage.Node.workers(:narrow_pool)
    end
  end

  describe "a named worker started elsewhere" do
    test "is connected once it is up, and again after it comes back" do
      name = :"nodetest_#{System.pid()}_named@127.0.0.1"
      start_supervised!({Pool, name: :named_pool, nodes: [name], spawn: 0}, id: :named)
      formats = fn -> Mirage.Node.call(:named_pool, :formats, nil, args()) end

      capture_log(fn ->
        assert formats.() == {:error, :worker_crashed}
        assert [%{node: ^name, connected: false, os_pid: nil}] = Mirage.Node.workers(:named_pool)

        for round <- 1..2 do
          {:ok, worker} = Worker.open(name, "127.0.0.1", Node.get_cookie(), [])

          try do
            assert_ready(worker)

            Distributed.wait_until(fn ->
              match?([%{connected: true}], Mirage.Node.workers(:named_pool))
            end)

            assert {:ok, nil, nil, %{read: _}} = formats.()
            assert [%{served: ^round, spawned: false}] = Mirage.Node.workers(:named_pool)
          after
            Worker.stop(worker)
          end

          Distributed.wait_until(fn ->
            match?([%{connected: false}], Mirage.Node.workers(:named_pool))
          end)
        end
      end)
    end
  end

  describe "deadlines" do
    test "a call past its timeout answers :timeout; the late answer reaches nobody",
         %{big: big} do
      assert slow(big, timeout: 50) == {:error, :timeout}
      # The proxy waited for the answer and dropped it: nothing in this mailbox, no
      # image counted, nothing left in flight.
      Distributed.wait_until(fn -> Enum.all?(Mirage.Node.workers(@pool), &(&1.in_flight == 0)) end)

      refute_received _
      assert Mirage.Node.live_handles(@pool) == 0
      assert {:ok, nil, nil, %{}} = call(:info, @sample)
    end
  end

  describe "held images" do
    test "belong to the calling process: freed when it exits" do
      me = self()

      owner =
        spawn(fn ->
          {:ok, nil, image, nil} = call(:from_bytes, @sample)
          {:ok, nil, crop, nil} = call(:crop, elem(image, 0), %{x: 0, y: 0, width: 8, height: 8})
          send(me, {:made, elem(image, 0), elem(crop, 0)})
          receive do: (:exit -> :ok)
        end)

      assert_receive {:made, image, crop}, 10_000
      assert Mirage.Node.live_handles(@pool) == 2
      # The image lives in the worker: operations on it run there, by anyone.
      assert {:ok, bytes, nil, nil} = call(:to_bytes, crop)
      assert {:ok, %{width: 8, height: 8}} = Mirage.info(bytes)

      send(owner, :exit)
      Distributed.wait_until(fn -> Mirage.Node.live_handles(@pool) == 0 end)
      # The worker let go of them: using one now is :released.
      Distributed.wait_until(fn -> call(:to_bytes, image) == :released end)
      assert call(:to_bytes, crop) == :released
    end

    test "release/1 is idempotent and frees the image in the worker" do
      assert {:ok, nil, {handle, :jpg, _, _}, nil} = call(:from_bytes, @sample)
      assert Mirage.Node.release(handle) == :ok
      assert Mirage.Node.release(handle) == :ok
      Distributed.wait_until(fn -> call(:to_bytes, handle) == :released end)
      assert Mirage.Node.live_handles(@pool) == 0
    end

    test "a handle of another transport or a forged one raises ArgumentError" do
      assert_raise ArgumentError, fn -> Mirage.Node.release({:mirage_port, 1, 2, 3, 4}) end
      assert_raise ArgumentError, fn -> call(:to_bytes, {:mirage_node, @pool, :x, 1, 2}) end
    end
  end

  describe "requests the worker refuses" do
    test "an unknown operation or a malformed request answers an error; the worker stays up" do
      [%{node: node} | _] = wait_connected(2)
      server = {:mirage, node}

      capture_log(fn ->
        assert GenServer.call(server, {:call, :run_code, nil, %{}}) == {:error, :internal_error}
        assert GenServer.call(server, {:call, :info, self(), %{}}) == {:error, :internal_error}
        assert GenServer.call(server, :garbage) == {:error, :internal_error}
        assert GenServer.call(server, {:call, :info}) == {:error, :internal_error}
        # A closure is no term the worker can read.
        assert GenServer.call(server, {:call, :info, fn -> :ok end, %{}}) ==
                 {:error, :internal_error}

        GenServer.cast(server, {:release, :not_a_list})
        send(server, :stray)
      end)

      assert {:ok, nil, nil, %{format: :jpg}} =
               GenServer.call(server, {:call, :info, @sample, args()})

      assert node in Node.list(:hidden)
    end
  end

  describe "cookies" do
    test "a worker with another cookie is never connected; calls answer :worker_crashed" do
      name = :"nodetest_#{System.pid()}_wrong@127.0.0.1"
      {:ok, worker} = Worker.open(name, "127.0.0.1", :not_the_cookie, [])

      try do
        assert_ready(worker)

        start_supervised!({Pool, name: :wrong_cookie_pool, nodes: [name], spawn: 0},
          id: :wrong
        )

        capture_log(fn ->
          args = args()

          assert Mirage.Node.call(:wrong_cookie_pool, :formats, nil, args) ==
                   {:error, :worker_crashed}
        end)

        refute name in Node.list(:hidden)

        assert [%{node: ^name, connected: false, spawned: false}] =
                 Mirage.Node.workers(:wrong_cookie_pool)
      after
        Worker.stop(worker)
      end
    end

    test "a worker dialling in with another cookie is refused" do
      name = "nodetest_#{System.pid()}_dialer@127.0.0.1"

      {port, os_pid} =
        Distributed.start_python_node("mirage.node", name, "nope", [
          "--connect",
          Atom.to_string(node())
        ])

      try do
        capture_log(fn ->
          assert_line(port, "connection to #{node()} failed")
        end)

        refute String.to_atom(name) in Node.list(:hidden)
      after
        Worker.kill(os_pid)
      end
    end
  end

  defp assert_ready(%Worker{port: port}), do: assert_line(port, "mirage.node ready")

  defp assert_line(port, text), do: Distributed.await_line(port, text)
end
