defmodule Mix.Tasks.Mirage.CheckTest do
  # Not async: the task prints through Mix.shell and writes to stderr.
  use ExUnit.Case, async: false
  import ExUnit.CaptureIO

  @moduletag :tmp_dir

  setup %{tmp_dir: dir} do
    File.cp!("samples/rocket.jpg", Path.join(dir, "rocket.jpg"))
    File.write!(Path.join(dir, "one_byte.bin"), <<0xFF>>)
    File.mkdir_p!(Path.join(dir, "nested"))

    File.write!(
      Path.join([dir, "nested", "cut.jpg"]),
      binary_part(File.read!("samples/rocket.jpg"), 0, 5000)
    )

    Mix.shell(Mix.Shell.Process)
    on_exit(fn -> Mix.shell(Mix.Shell.IO) end)
    :ok
  end

  test "checks every file under the directory and sums up", %{tmp_dir: dir} do
    progress =
      capture_io(:stderr, fn -> Mix.Tasks.Mirage.Check.run([dir, "--deadline", "60000"]) end)

    assert progress =~ "3/3"
    assert_received {:mix_shell, :info, [summary]}
    assert summary =~ "3 files"
    # Files by verdict, every operation by reason, the slowest files, memory.
    assert summary =~ ~r/^ok\s+1$/m
    assert summary =~ ~r/^unsupported_image_format\s+1$/m
    assert summary =~ ~r/^truncated_image\s+1$/m
    for op <- Mirage.Check.operations(), do: assert(summary =~ op)
    assert summary =~ "slowest files"
    assert summary =~ "nested/cut.jpg"
    assert summary =~ "peak resident memory"
  end

  test "refuses a path that is not a directory" do
    assert_raise Mix.Error, ~r/not a directory/, fn ->
      Mix.Tasks.Mirage.Check.run(["samples/rocket.jpg"])
    end

    assert_raise Mix.Error, ~r/usage/, fn -> Mix.Tasks.Mirage.Check.run([]) end
  end

  test "Mirage.Check.run answers every operation" do
    %{answers: answers} = Mirage.Check.run(File.read!("samples/rocket.jpg"))
    assert answers == Enum.map(Mirage.Check.operations(), &{&1, :ok})
    %{answers: answers} = Mirage.Check.run(<<0xFF>>)
    assert Enum.uniq(Enum.map(answers, &elem(&1, 1))) == [{:error, :unsupported_image_format}]
  end

  test "a passed deadline is an answer of its own, and a finding" do
    %{answers: answers} = Mirage.Check.run(File.read!("samples/rocket.jpg"), deadline: 0)
    assert Enum.all?(answers, &(elem(&1, 1) == :deadline))
    assert Mirage.Check.finding?(:deadline)
    assert Mirage.Check.finding?({:error, :internal_error})
    refute Mirage.Check.finding?({:error, :truncated_image})
  end
end
