defmodule Mirage.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    # The port pool starts here only when configured; otherwise on first use.
    port =
      if Application.get_env(:mirage, :transport) in [:port, Mirage.Transport.Port],
        do: [Mirage.Port.Pool],
        else: []

    Supervisor.start_link([Mirage.LogForwarder | port],
      strategy: :one_for_one,
      name: Mirage.Supervisor
    )
  end
end
