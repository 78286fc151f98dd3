defmodule Mirage.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    Supervisor.start_link([Mirage.LogForwarder], strategy: :one_for_one, name: Mirage.Supervisor)
  end
end
