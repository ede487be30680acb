"""Node's `ws` client over wss:// (issue 13): a client nobody in this project wrote, on
another TLS stack (Node's bundled OpenSSL build, its own certificate checks).

test/integration/ws_client.mjs runs one scenario per `node` process against a wsrelay with
--tls-cert/--tls-key from conftest's test CA, which the client trusts through `ws`'s `ca:`
option only, and prints what it saw as JSON; the assertions are here:
  - /ws: both welcomes, b's join seen by a, and b's {"x":1,"y":2} relayed to a and to b
    byte for byte with b's sender and color;
  - /echo: a 70 KB binary message comes back whole, sent whole and sent in three fragments;
  - a client that does not trust the test CA fails with a certificate error (so the other
    scenarios' verification is real);
  - with --token-secret-file: a `bearer.<token>` subprotocol beside wsrelay.batch opens
    /ws/doc (the 101 names wsrelay.batch only; the welcome carries the token's name), and the
    same handshake without a token gets 401.
`ws` comes from package.json's devDependencies (scripts/deps.sh runs `npm ci`).
"""

import json
import shutil
import subprocess

import pytest

from conftest import HOST, REPO, join_text, relayed, tls_pki
from test_tokens import SECRET, later, mint

SCRIPT = REPO / "test" / "integration" / "ws_client.mjs"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture
def wss_server(start_server):
    """Factory: a server speaking TLS with the test CA's pair (whatever the pass)."""

    def start(*flags):
        p = tls_pki()
        srv = start_server("--tls-cert", p["cert"], "--tls-key", p["key"], *flags)
        srv.ssl = p["ctx"]  # the survival check speaks wss:// too
        return srv

    return start


def node_client(srv, scenario, *args):
    """Runs one scenario of ws_client.mjs; returns what it printed, parsed."""
    if not (REPO / "node_modules" / "ws").is_dir():
        pytest.fail("node_modules/ws is missing: run scripts/deps.sh (npm ci)")
    r = subprocess.run(
        ["node", str(SCRIPT), scenario, f"wss://{HOST}:{srv.port}", str(tls_pki()["ca"]), *args],
        cwd=REPO, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    out = r.stdout.decode().strip().splitlines()
    assert r.returncode == 0 and out, f"node {scenario}: {r}"
    return json.loads(out[-1])


def test_two_node_clients_relay_a_cursor_over_wss(wss_server):
    srv = wss_server()
    got = node_client(srv, "relay")
    wa, wb = json.loads(got["welcomeA"]), json.loads(got["welcomeB"])
    assert wa["type"] == wb["type"] == "welcome" and wa["id"] != wb["id"], got
    assert json.loads(got["joinSeenByA"]) == json.loads(join_text(wb)), got
    assert got["relayedToA"] == relayed('"x":1,"y":2', wb), got
    assert got["relayedToB"] == relayed('"x":1,"y":2', wb), got


def test_node_echo_of_70_kb_whole_and_fragmented_over_wss(wss_server):
    srv = wss_server("--max-message", "128K")
    got = node_client(srv, "echo")
    assert got["sent"]["length"] == 70 * 1024, got
    for how in ("whole", "fragmented"):
        assert got[how] == dict(got["sent"], isBinary=True), (how, got)


def test_a_node_client_that_does_not_trust_the_ca_is_refused(wss_server):
    srv = wss_server()
    got = node_client(srv, "untrusted")
    assert got["failed"], got
    # Node's codes for a chain it cannot verify (our leaf's issuer is in no default store).
    assert got["code"] in ("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
                           "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT"), got


def test_a_node_client_with_a_bearer_token_subprotocol(wss_server, tmp_path):
    key = tmp_path / "token.key"
    key.write_bytes(SECRET + b"\n")
    srv = wss_server("--token-secret-file", key)
    srv.ws_path = "/ws?token=" + mint({"exp": later(), "room": ""})
    tok = mint({"exp": later(), "room": "doc", "name": "Node 🟢"})
    got = node_client(srv, "token", tok)
    assert got["protocol"] == "wsrelay.batch", got
    welcome = json.loads(got["batch"])[0]
    assert welcome["type"] == "welcome" and welcome["room"] == "doc", got
    assert welcome["name"] == "Node 🟢", got
    assert got["refusedStatus"] == 401, got
    assert tok not in srv.stderr
