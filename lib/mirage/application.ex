defmodule Mirage.Application do
  # Starts the log forwarder and what the configured transport needs
  # (`Mirage.Transport` callback `children/0`; the NIF's loads the library). Other
  # transports start nothing here: the NIF loads itself on first use.
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    transport = Mirage.Transport.configured()

    children =
      if Code.ensure_loaded?(transport) and function_exported?(transport, :children, 0),
        do: transport.children(),
        else: []

    Supervisor.start_link([Mirage.LogForwarder | children],
      strategy: :one_for_one,
      name: Mirage.Supervisor
    )
  end
end
