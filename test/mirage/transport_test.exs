defmodule Mirage.TransportTest do
  use ExUnit.Case, async: true
  import ExUnit.CaptureLog
  doctest Mirage.Transport

  alias Mirage.Transport

  # A transport answering what it was told to, to drive Mirage's decoding.
  defmodule Canned do
    @moduledoc false
    @behaviour Mirage.Transport
    @impl true
    def call(op, _source, args) do
      send(self(), {__MODULE__, op, args})
      Process.get({__MODULE__, :reply})
    end

    @impl true
    def release(_handle), do: :ok
    @impl true
    def live_handles, do: 0
  end

  @sample File.read!("samples/rocket.jpg")

  defp canned(reply), do: Process.put({Canned, :reply}, reply)

  describe "result/2" do
    test "passes each operation's shape and every documented reason" do
      image = {make_ref(), :png, 3, 4}
      assert Transport.result(:from_bytes, {:ok, nil, image, nil}) == {:ok, image}
      assert Transport.result(:crop, {:ok, nil, image, nil}) == {:ok, image}
      assert Transport.result(:thumbnail, {:ok, "b", image, nil}) == {:ok, "b", image}
      assert Transport.result(:resize, {:ok, "b", image, nil}) == {:ok, "b", image}
      assert Transport.result(:to_bytes, {:ok, "b", nil, nil}) == {:ok, "b"}
      assert Transport.result(:thumbnail, :released) == :released

      for reason <- Mirage.Error.reasons(),
          do: assert(Transport.result(:info, {:error, reason}) == {:error, reason})
    end

    test "turns any other shape into :internal_error and logs it" do
      image = {make_ref(), :png, 3, 4}

      for {op, reply} <- [
            {:from_bytes, {:ok, "bytes", image, nil}},
            {:from_bytes, {:ok, nil, {make_ref(), :psd, 3, 4}, nil}},
            {:crop, {:ok, nil, {make_ref(), :png, 0, 4}, nil}},
            {:thumbnail, {:ok, nil, image, nil}},
            {:to_bytes, {:ok, :not_bytes, nil, nil}},
            {:info, {:ok, nil, nil, %{format: :png}}},
            {:formats, {:ok, nil, nil, %{read: [:png]}}},
            {:info, {:error, :no_such_reason}},
            {:info, {:error, "timeout"}},
            {:info, :something_else},
            {:info, nil}
          ] do
        log =
          capture_log(fn ->
            assert Transport.result(op, reply) == {:error, :internal_error}, inspect(reply)
          end)

        assert log =~ "unexpected answer from the transport for #{inspect(op)}"
      end
    end

    test "every public function goes through it" do
      canned({:ok, :garbage})

      log =
        capture_log(fn ->
          assert Mirage.from_bytes(@sample, transport: Canned) == {:error, :internal_error}
          assert Mirage.info(@sample, transport: Canned) == {:error, :internal_error}

          assert Mirage.thumbnail(@sample, 8, 8, transport: Canned) ==
                   {:error, :internal_error}

          assert_raise Mirage.Error, fn -> Mirage.formats(transport: Canned) end
        end)

      assert log =~ "unexpected answer"
    end
  end

  describe "choosing the transport" do
    test "transports/0 is the one list; names and behaviour modules are accepted" do
      assert Transport.transports() == %{
               nif: Mirage.Transport.NIF,
               port: Mirage.Transport.Port,
               node: Mirage.Transport.Node
             }

      assert Transport.module(Canned) == {:ok, Canned}
      # A module that does not implement the behaviour is no transport.
      assert Transport.module(Enum) == :error
      assert Transport.module("nif") == :error
    end

    test "a held image goes to the transport that made it, whatever the setting" do
      canned({:ok, nil, {:canned_handle, :png, 5, 6}, nil})
      {:ok, image} = Mirage.from_bytes(@sample, transport: Canned)
      assert %Mirage{transport: Canned, resource: :canned_handle, width: 5} = image

      canned({:error, :overloaded})
      # Configured :nif (the default) and no option: still Canned.
      assert Mirage.rotate(image, 90) == {:error, :overloaded}
      assert Mirage.release(image) == :ok
      assert Mirage.rotate(image, 90, transport: Canned) == {:error, :overloaded}
    end

    test "a transport without handle?/1 still never gets a binary or nil as a handle" do
      canned({:ok, "bytes", nil, nil})

      for forged <- [@sample, nil] do
        image = %Mirage{
          format: :jpg,
          width: 1,
          height: 1,
          byte_size: nil,
          resource: forged,
          transport: Canned
        }

        assert_raise ArgumentError, ~r/not a live Mirage image/, fn -> Mirage.to_bytes(image) end
        refute_received {Canned, :to_bytes, _}
      end

      image = %Mirage{
        format: :jpg,
        width: 1,
        height: 1,
        byte_size: nil,
        resource: :canned,
        transport: Canned
      }

      assert Mirage.to_bytes(image) == {:ok, "bytes"}
    end

    test "naming another transport for an image raises ArgumentError" do
      image = Mirage.from_bytes!(@sample)
      assert image.transport == Mirage.Transport.NIF

      for use <- [
            fn -> Mirage.resize(image, 8, 8, transport: Canned) end,
            fn -> Mirage.thumbnail(image, 8, 8, transport: Canned) end,
            fn -> Mirage.crop(image, 0, 0, 8, 8, transport: Canned) end,
            fn -> Mirage.to_bytes(image, transport: Canned) end,
            fn -> Mirage.flip(image, :vertical, transport: Canned) end,
            fn -> Mirage.auto_orient(image, transport: Canned) end
          ] do
        assert_raise ArgumentError, ~r/made by Mirage.Transport.NIF.*only be used/, use
      end

      assert {:ok, _} = Mirage.crop(image, 0, 0, 8, 8, transport: :nif)
    end

    test "the timeout reaches the transport in the args map, the transport does not" do
      canned({:error, :timeout})
      assert Mirage.info(@sample, transport: Canned) == {:error, :timeout}
      assert_received {Canned, :info, %{timeout: 30_000} = args}
      refute Map.has_key?(args, :transport)

      assert Mirage.to_bytes(%Mirage{Mirage.from_bytes!(@sample) | transport: Canned},
               timeout: :infinity
             ) ==
               {:error, :timeout}

      assert_received {Canned, :to_bytes, %{timeout: :infinity}}
    end
  end
end
