defmodule Mirage.Node.TLSTest do
  # The node transport over TLS distribution: a child VM started with
  # `-proto_dist inet_tls` reaches a worker started with --tls-cert/--tls-key/--tls-ca,
  # all signed by a throwaway CA made here with openssl; a worker without TLS is
  # never connected.
  use ExUnit.Case, async: true

  alias Mirage.Test.Distributed

  @moduletag :node
  if reason = Mirage.ConformanceCase.unavailable(:node), do: @moduletag(skip: reason)

  unless System.find_executable("openssl"),
    do: @moduletag(skip: "openssl is not on PATH (needed to make a throwaway CA)")

  @moduletag :tmp_dir

  @script ~S"""
  [tls, plain] = Enum.map(["MIRAGE_TLS_WORKER", "MIRAGE_PLAIN_WORKER"], &String.to_atom(System.fetch_env!(&1)))
  {:ok, _} = Application.ensure_all_started(:mirage)
  {:ok, _} = Mirage.Node.Pool.start_link(name: :tls_pool, nodes: [tls, plain])

  Enum.find(1..400, fn _ ->
    Process.sleep(50)
    Enum.any?(Mirage.Node.workers(:tls_pool), & &1.connected)
  end)

  # Time for the plain worker's attempts to fail, more than once.
  Process.sleep(1_000)
  {_, args} = Mirage.Options.validate!([timeout: 30_000], [], "tls")
  {:ok, nil, nil, info} = Mirage.Node.call(:tls_pool, :info, File.read!("samples/rocket.jpg"), args)
  IO.puts("proto #{:init.get_argument(:proto_dist) |> inspect()}")
  IO.puts("info #{info.format} #{info.width}x#{info.height}")

  for worker <- Mirage.Node.workers(:tls_pool),
      do: IO.puts("worker #{worker.node} connected #{worker.connected} served #{worker.served}")
  """

  test "a VM on TLS distribution calls a TLS worker; a plain-TCP worker is never connected",
       %{tmp_dir: dir} do
    pki = pki(dir)
    ebin = :mirage |> :code.lib_dir() |> Path.join("ebin")
    cookie = "tls_#{System.unique_integer([:positive])}"
    tls = "tlsw_#{System.pid()}@127.0.0.1"
    plain = "plainw_#{System.pid()}@127.0.0.1"
    tls_flags = ["--tls-cert", pki.cert, "--tls-key", pki.key, "--tls-ca", pki.ca]
    workers = [start_worker(tls, cookie, tls_flags), start_worker(plain, cookie, [])]

    try do
      Enum.each(workers, &wait_ready/1)

      {output, status} =
        System.cmd(
          "elixir",
          ["--name", "tlsvm_#{System.pid()}@127.0.0.1", "--cookie", cookie, "--erl"] ++
            ["-proto_dist inet_tls -ssl_dist_optfile #{pki.options}"] ++
            ["-pa", ebin, "-e", @script],
          env: [{"MIRAGE_TLS_WORKER", tls}, {"MIRAGE_PLAIN_WORKER", plain}],
          stderr_to_stdout: true
        )

      assert status == 0, output
      assert output =~ ~s(proto {:ok, [['inet_tls']]})
      assert output =~ "info jpg 640x427"
      assert output =~ "worker #{tls} connected true served 1"
      assert output =~ "worker #{plain} connected false served 0"
    after
      for {_port, os_pid} <- workers, do: Mirage.Node.Worker.kill(os_pid)
    end
  end

  defp start_worker(name, cookie, extra),
    do: Distributed.start_python_node("mirage.node", name, cookie, extra)

  defp wait_ready({port, _os_pid}), do: Distributed.await_line(port, "mirage.node ready")

  # A CA, and one certificate it signed for both ends (127.0.0.1), plus the VM's
  # ssl_dist options: verify the peer both ways.
  defp pki(dir) do
    ca_key = Path.join(dir, "ca.key")
    ca = Path.join(dir, "ca.pem")
    key = Path.join(dir, "node.key")
    csr = Path.join(dir, "node.csr")
    cert = Path.join(dir, "node.pem")
    ext = Path.join(dir, "node.ext")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    openssl!(
      ["req", "-x509"] ++
        ec ++
        ["-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=mirage test ca"] ++
        ["-addext", "basicConstraints=critical,CA:TRUE"] ++
        ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    )

    # The VM checks the worker's host part (127.0.0.1) as a DNS name, hence DNS:127.0.0.1.
    File.write!(ext, """
    subjectAltName=DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1
    basicConstraints=critical,CA:FALSE
    keyUsage=critical,digitalSignature
    extendedKeyUsage=serverAuth,clientAuth
    """)

    openssl!(["req"] ++ ec ++ ["-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"])

    openssl!(
      ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial"] ++
        ["-out", cert, "-days", "1", "-extfile", ext]
    )

    common =
      ~s({certfile, "#{cert}"}, {keyfile, "#{key}"}, {cacertfile, "#{ca}"}, ) <>
        "{verify, verify_peer}, {secure_renegotiate, true}"

    options = Path.join(dir, "ssl_dist.conf")

    File.write!(
      options,
      "[{server, [#{common}, {fail_if_no_peer_cert, true}]}, {client, [#{common}]}].\n"
    )

    %{ca: ca, cert: cert, key: key, options: options}
  end

  defp openssl!(args) do
    {output, status} = System.cmd("openssl", args, stderr_to_stdout: true)
    assert status == 0, "openssl #{Enum.join(args, " ")}: #{output}"
  end
end
