defmodule Mirage.Transport.NIF do
  @moduledoc """
  The default transport (`transport: :nif`): Python embedded in the VM through
  `priv/mirage_nif.so`.

  ## Loading
  The library, and with it the interpreter, is loaded when `:nif` is the configured
  transport (`config :mirage, transport: :nif`, the default) as the `:mirage`
  application starts, or else on the first call that uses it. Loading the module
  alone starts nothing, so a VM configured for another transport never starts an
  interpreter inside itself. `Mirage.Python` picks the interpreter; a failure to load
  is printed on stderr at start and raised (`RuntimeError`) by the calls.

  ## Held images
  Each held image is a NIF resource. It is released at garbage collection of the
  last term referring to it (the struct and its copies), or earlier with
  `Mirage.release/1`. The release itself runs on a thread of its own, never on a
  scheduler. Garbage collection sees only the small resource, not the pixels, so a
  process handling many large images should release them.

  ## Scheduling
  Every call runs on a dirty scheduler: operations that only read a header on a
  dirty I/O scheduler (they are short but may wait for the GIL, and there are many
  of those threads), the ones that decode, resample or encode on a dirty CPU
  scheduler. The `:timeout` option is passed to the core, where the deadline is
  cooperative: the call stops at its next safe point (after reading the header,
  between frames, between decoding, resampling and encoding) once the deadline has
  passed or the calling process has exited, and answers `{:error, :timeout}`. A
  single step (decoding one frame, encoding the result) is not interrupted, so a
  call may end up to one such step late. The NIF never answers `:worker_crashed` or
  `:overloaded`.
  """
  @behaviour Mirage.Transport

  @header_only [:from_bytes, :info, :formats]

  @impl true
  def call(op, source, args) do
    args = :erlang.term_to_binary(args)

    if op in @header_only,
      do: Mirage.NIF.call_io(op, source, args),
      else: Mirage.NIF.call_cpu(op, source, args)
  rescue
    # The NIF refuses (badarg) a reference that is no image resource of its own.
    error in ArgumentError ->
      if is_reference(source), do: not_an_image!(source), else: reraise(error, __STACKTRACE__)
  end

  @impl true
  def release(handle) do
    Mirage.NIF.release(handle)
  rescue
    ArgumentError -> not_an_image!(handle)
  end

  @impl true
  # Held images are NIF resources, which Elixir sees as references.
  def handle?(term), do: is_reference(term)

  defp not_an_image!(handle) do
    raise ArgumentError,
          "not a live Mirage image: its resource, #{inspect(handle)}, is not an image of #{inspect(__MODULE__)}"
  end

  @impl true
  def live_handles, do: Mirage.NIF.live_handles()

  @impl true
  def children do
    [%{id: __MODULE__, start: {__MODULE__, :start_link, []}, restart: :temporary}]
  end

  @doc false
  # Loads the library while the application starts; :ignore leaves no process. A
  # failure is printed and the application starts anyway: calls raise it.
  @spec start_link() :: :ignore
  def start_link do
    _ = Mirage.NIF.load()
    :ignore
  end
end
