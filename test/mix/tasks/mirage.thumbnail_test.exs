defmodule Mix.Tasks.Mirage.ThumbnailTest do
  # Not async: one test changes the VM's working directory, which every process shares.
  use ExUnit.Case, async: false
  import ExUnit.CaptureIO

  @moduletag :tmp_dir

  test "thumbnails a file through the NIF and reports what it wrote", %{tmp_dir: dir} do
    out = Path.join(dir, "thumb.jpg")

    report =
      capture_io(fn ->
        Mix.Tasks.Mirage.Thumbnail.run(["samples/rocket.jpg", out, "--size", "120x80"])
      end)

    assert report =~ "samples/rocket.jpg: jpg 640x427"
    assert report =~ "wrote #{out}: jpg 120x80"
    assert {:ok, %{format: :jpg, width: 120, height: 80}} = Mirage.info(File.read!(out))
  end

  test "defaults to the bundled sample and 256x256", %{tmp_dir: dir} do
    report = capture_io(fn -> File.cd!(dir, fn -> Mix.Tasks.Mirage.Thumbnail.run([]) end) end)
    assert report =~ "rocket.jpg: jpg 640x427"

    assert {:ok, %{width: 256, height: 256}} =
             Mirage.info(File.read!(Path.join(dir, "thumbnail.jpg")))
  end

  test "takes the transport by name; each writes the same bytes", %{tmp_dir: dir} do
    written =
      for name <- ["nif", "port"] do
        out = Path.join(dir, "thumb-#{name}.jpg")

        report =
          capture_io(fn ->
            Mix.Tasks.Mirage.Thumbnail.run(["samples/rocket.jpg", out, "--transport", name])
          end)

        assert report =~ "wrote #{out}: jpg 256x256"
        File.read!(out)
      end

    assert [same, same] = written
  end

  test "rejects a bad size or transport and reports bad input as a Mix error", %{tmp_dir: dir} do
    assert_raise Mix.Error, ~r/--size must look like 256x256/, fn ->
      Mix.Tasks.Mirage.Thumbnail.run(["--size", "0x10"])
    end

    assert_raise Mix.Error, ~r/--transport must be one of \[:nif/, fn ->
      Mix.Tasks.Mirage.Thumbnail.run(["--transport", "pigeon"])
    end

    junk = Path.join(dir, "junk.jpg")
    File.write!(junk, "not an image")

    assert_raise Mix.Error, ~r/unsupported_image_format/, fn ->
      Mix.Tasks.Mirage.Thumbnail.run([junk, Path.join(dir, "out.jpg")])
    end
  end
end
