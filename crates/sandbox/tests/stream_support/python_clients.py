"""Drives the sandbox's legacy WebSocket protocols from Python: the
`kubernetes` client's exec (v5/v4 offer) and port-forward (?ports=, v4), and
raw websocket-client sessions for each exec subprotocol. Prints one
"ok <check>" line per passed check and exits non-zero on the first failure.
"""
import base64
import json
import os
import socket
import ssl
import sys

from kubernetes import client, config
from kubernetes.stream import portforward, stream
import websocket

config.load_kube_config(config_file=os.environ["KUBECONFIG"])
api = client.CoreV1Api()
cfg = client.Configuration.get_default_copy()


def check(name, cond, detail=""):
    if not cond:
        print("FAIL %s %s" % (name, detail))
        sys.exit(1)
    print("ok %s" % name)


def client_exec():
    resp = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                  command=["sh", "-c", "echo out; echo err >&2; exit 5"],
                  stderr=True, stdin=False, stdout=True, tty=False,
                  _preload_content=False)
    resp.run_forever(timeout=60)
    out, err = resp.read_stdout(), resp.read_stderr()
    check("client exec stdout", out == "out\n", repr(out))
    check("client exec stderr", err == "err\n", repr(err))
    check("client exec returncode", resp.returncode == 5, repr(resp.returncode))

    resp = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                  command=["cat"], stderr=True, stdin=True, stdout=True, tty=False,
                  _preload_content=False)
    resp.write_stdin("hello from python\n")
    got = ""
    for _ in range(100):
        resp.update(timeout=1)
        got += resp.read_stdout() if resp.peek_stdout() else ""
        if "hello from python" in got:
            break
    resp.close()
    check("client exec stdin", "hello from python" in got, repr(got))


def client_portforward():
    pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "default",
                     ports="8080,9999")
    good = pf.socket(8080)
    good.setblocking(True)
    good.settimeout(60)
    good.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = good.recv(65536)
        if not chunk:
            break
        data += chunk
    check("client port-forward 8080", data.startswith(b"HTTP/1.0 200"), repr(data[:80]))
    error = pf.error(9999)
    check("client port-forward 9999 refused alone",
          error is not None and "error forwarding port 9999" in error, repr(error))
    pf.close()


def raw_exec(protocol):
    url = cfg.host.replace("https://", "wss://") + \
        "/api/v1/namespaces/default/pods/demo/exec?command=sh&command=-c&command=echo+out%3B+exit+3&stdout=true&stderr=true"
    ws = websocket.WebSocket(sslopt={"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": cfg.ssl_ca_cert})
    auth = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    ws.connect(url, header=["authorization: %s" % auth],
               subprotocols=[protocol])
    check("raw %s negotiated" % protocol, ws.subprotocol == protocol, repr(ws.subprotocol))
    b64 = "base64" in protocol
    chans = {}
    for _ in range(1000):
        op, payload = ws.recv_data(control_frame=True)
        if op == websocket.ABNF.OPCODE_CLOSE:
            break
        if op not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY) or not payload:
            continue
        if b64:
            ch, body = payload[0] - ord("0"), base64.b64decode(payload[1:])
        else:
            ch, body = payload[0], payload[1:]
        chans[ch] = chans.get(ch, b"") + body
    ws.close()
    check("raw %s stdout" % protocol, chans.get(1) == b"out\n", repr(chans))
    status = chans.get(3, b"")
    if protocol.startswith("v4"):
        st = json.loads(status)
        check("raw %s status" % protocol,
              st["reason"] == "NonZeroExitCode" and st["details"]["causes"][0]["message"] == "3", repr(st))
    else:
        check("raw %s status" % protocol,
              status.startswith(b"command terminated with non-zero exit code") and status.endswith(b"3"),
              repr(status))


for step in sys.argv[1:]:
    if step == "exec":
        client_exec()
    elif step == "portforward":
        client_portforward()
    else:
        raw_exec(step)
