"""A remote signer broadcasts by itself (eth_sendTransaction) and only then tells the hash.

The journal entry is written before the signer is asked, with the nonce; a run killed
before the send, or after it but before the hash was journaled, must not deposit twice: an
entry whose nonce is still free may yet be sent by the signer, so it waits for a person
(``provision journal resolve``), and one whose nonce was used is found by that nonce.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from dydx3 import Client
from support.apply_runs import TestAccount, chain_client, write_manifest
from support.safety import Run, provision

from provisioner.money import from_base_units, to_base_units
from provisioner.sandbox.control import SandboxInfo
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

pytestmark = pytest.mark.sandbox

SIGKILL = -9
REMOTE = DEV_ACCOUNTS[
    4
]  # anvil's unlocked dev account 4: no other test on the shared sandbox uses it
STEP = to_base_units(Decimal("1.25"))


@pytest.fixture
def send_only_signer(sandbox: SandboxInfo) -> Iterator[str]:
    """anvil's unlocked accounts behind a JSON-RPC filter that has no eth_signTransaction,
    like a policy-engine signer that only ever broadcasts itself."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = json.loads(body)
            if isinstance(request, dict) and request.get("method") == "eth_signTransaction":
                answer = json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": request.get("id"),
                        "error": {"code": -32601, "message": "method not found"},
                    }
                ).encode()
            else:
                answer = requests.post(
                    sandbox.rpc_url,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                ).content
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _stark_public() -> int:
    """The test knows the dev key (anvil publishes it); the provisioner never sees it."""
    client = Client(
        host="http://127.0.0.1:1", network_id=11155111, eth_private_key=REMOTE.private_key
    )
    return int(
        client.onboarding.derive_stark_key(ethereum_address=REMOTE.address)["public_key"], 16
    )


def _deposited(sandbox: SandboxInfo, stark_public: int) -> int:
    deposits = chain_client(sandbox).deposits(refresh=True)
    return sum(amount for (key, _position), amount in deposits.items() if key == stark_public)


def _write(
    tmp_path: Path, prefix: str | None, deposit: int, signer_url: str
) -> tuple[Path, str, str]:
    account = TestAccount(
        name="remote-crash",
        address=REMOTE.address,
        private_key="",
        deposit=str(from_base_units(deposit)),
        api_keys=["default"],
    )
    m = write_manifest(tmp_path, [account], prefix=prefix)
    doc = yaml.safe_load(m.path.read_text())
    doc["accounts"][0]["signer"] = {"remote": {"url": signer_url, "timeout_seconds": 30}}
    m.path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return m.path, m.prefix, m.state_path


def _apply(sandbox: SandboxInfo, path: Path, failpoint: str | None = None) -> Run:
    args = ["-v", "apply", "-f", str(path), "--auto-approve", "--lock-ttl", "3"]
    return provision(sandbox, *args, failpoint=failpoint)


def test_a_killed_remote_signer_run_never_deposits_twice(
    sandbox_env: SandboxInfo, tmp_path: Path, send_only_signer: str
) -> None:
    sandbox = sandbox_env
    stark = _stark_public()
    start = _deposited(sandbox, stark)  # nonzero only on a reused sandbox
    prefix = None
    for n, point in enumerate(
        ["after_journal_record:deposit", "after_remote_send:deposit"], start=1
    ):
        path, prefix, _state = _write(tmp_path, prefix, start + n * STEP, send_only_signer)
        killed = _apply(sandbox, path, failpoint=point)
        assert killed.rc == SIGKILL, killed.err
        rerun = _apply(sandbox, path)  # the dead run's leases are taken over at once
        assert "took over" in rerun.err and "no longer exists" in rerun.err, rerun.err
        assert "rebroadcasting" not in rerun.err  # no signed bytes: this signer only sends
        if point == "after_remote_send:deposit":  # sent, hash unknown: found by its nonce
            assert rerun.rc == 0, rerun.err
            assert "journaled deposit with nonce" in rerun.err and "mined" in rerun.err, rerun.err
        else:  # journaled, maybe asked: the signer may still send it, so a person decides
            assert rerun.rc == 1, rerun.err
            assert "awaiting the signer" in rerun.err, rerun.err
            nonce = rerun.err.split("--nonce ", 1)[1].split()[0]
            resolved = provision(
                sandbox,
                "journal",
                "resolve",
                "-f",
                str(path),
                "--account",
                "remote-crash",
                "--nonce",
                nonce,
            )
            assert resolved.rc == 0 and "resolved by hand" in resolved.out, str(resolved)
            again = _apply(sandbox, path)
            assert again.rc == 0, again.err
        assert _deposited(sandbox, stark) == start + n * STEP, point
        plan = provision(sandbox, "plan", "-f", str(path), "--detailed-exitcode")
        assert plan.rc == 0, plan.out + plan.err
