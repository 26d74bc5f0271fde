"""A send-only remote signer on 127.0.0.1 for keys a test made: ``eth_accounts``,
``eth_signTypedData_v4`` and ``eth_sendTransaction`` (signed here, sent raw to the node), but
no ``eth_signTransaction``, like a policy engine that only ever broadcasts by itself."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

from provisioner.signers.local import LocalKeySigner

_HEX_FIELDS = ("from", "to", "data")


class SendOnlySigner:
    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url
        self._keys: dict[str, LocalKeySigner] = {}
        signer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = json.dumps(signer._answer(request)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, private_key: str) -> None:
        key = LocalKeySigner(private_key)
        self._keys[key.address.lower()] = key

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        method, params = request.get("method"), request.get("params") or []
        if method == "eth_accounts":
            body["result"] = sorted(self._keys)
        elif method == "eth_signTypedData_v4":
            body["result"] = self._keys[params[0].lower()].sign_typed_data(json.loads(params[1]))
        elif method == "eth_sendTransaction":
            fields = params[0]
            tx = {k: (v if k in _HEX_FIELDS else int(v, 16)) for k, v in fields.items()}
            raw = self._keys[fields["from"].lower()].sign_transaction(tx)
            sent = requests.post(
                self.rpc_url,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "eth_sendRawTransaction",
                    "params": ["0x" + raw.hex()],
                },
                timeout=30,
            ).json()
            body.update({k: v for k, v in sent.items() if k in ("result", "error")})
        else:
            body["error"] = {"code": -32601, "message": f"the method {method} does not exist"}
        return body


def use_remote_signer(manifest: Path, url: str) -> None:
    """Point every account of ``manifest`` at the remote signer ``url``."""
    doc = yaml.safe_load(manifest.read_text())
    for account in doc["accounts"]:
        account["signer"] = {"remote": {"url": url, "timeout_seconds": 30}}
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))
