defmodule Mirage.Test.OtherPython do
  @moduledoc false
  # A real Python 3 interpreter of another minor version than the one Mirage was
  # built with (python3.N on PATH, pyenv's versions), or nil if this machine has none.

  def find do
    {:ok, %{version: built}} = Mirage.Python.recorded()

    candidates =
      for(minor <- 6..20, path = System.find_executable("python3.#{minor}"), do: path) ++
        Path.wildcard(Path.expand("~/.pyenv/versions/3.*/bin/python3"))

    Enum.find(candidates, &(version(&1) not in [nil, built]))
  end

  defp version(python) do
    case System.cmd(python, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
           stderr_to_stdout: true
         ) do
      {out, 0} -> String.trim(out)
      _ -> nil
    end
  rescue
    _ in ErlangError -> nil
  end
end
