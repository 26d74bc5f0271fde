"""hvac's JSON adapter, sending through the shared transport instead of a requests session.

hvac builds every path and body; this sends them, counts them by kind (the seam behind
``VaultClient.stats``) and raises what hvac's own adapter raises. hvac still constructs a
``requests.Session`` of its own, which nothing sends through.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

import hvac.adapters
import hvac.exceptions as hvac_exc

from provisioner.clients.transport import Tls, Transport


class TransportAdapter(hvac.adapters.JSONAdapter):
    def __init__(self, *args: Any, transport: Transport, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transport = transport
        self._tls = _tls(self._kwargs.get("verify", True), self._kwargs.get("cert"))
        self._timeout = float(self._kwargs.get("timeout") or 30)
        self._counts = {"reads": 0, "writes": 0, "auth": 0}
        self._count_lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        raise_exception: bool = True,
        **kwargs: Any,
    ) -> Any:
        """As hvac's ``JSONAdapter.request``: the decoded body of a 200, else the response;
        hvac's exceptions for 4xx and 5xx. A redirect elsewhere is an error, not followed."""
        while "//" in url:
            url = url.replace("//", "/")  # as hvac and the Vault CLI do
        url = self.urljoin(self.base_uri, url)
        sent = dict(headers or {})
        if self.request_header:
            sent["X-Vault-Request"] = "true"
        if self.token:
            sent["X-Vault-Token"] = self.token
        if self.namespace:
            sent["X-Vault-Namespace"] = self.namespace
        if kwargs.get("wrap_ttl"):
            sent["X-Vault-Wrap-TTL"] = str(kwargs["wrap_ttl"])
        if kwargs.get("params"):
            url += "?" + urlencode(kwargs["params"], doseq=True)
        body = None
        if kwargs.get("json") is not None:
            body = json.dumps(kwargs["json"])
            sent["Content-Type"] = "application/json"
        self._count(method, url)
        response = self._transport.request(
            method.upper(), url, body=body, headers=sent, timeout=self._timeout, tls=self._tls
        )
        if 300 <= response.status_code < 400:
            raise hvac_exc.VaultError(
                errors=[
                    f"answered {response.status_code} with a redirect to another address, "
                    "which is not followed: point vault.address at the active node"
                ],
                method=method,
                url=url,
            )
        if not response.ok and raise_exception and not self.ignore_exceptions:
            self._raise_for_error(method, url, response)  # type: ignore[arg-type]
        if response.status_code == 200 and response.content:
            try:
                return response.json()
            except ValueError:
                pass
        return response

    def _count(self, method: str, url: str) -> None:
        api_path = urlsplit(url).path.lstrip("/").removeprefix("v1/")
        if api_path.startswith("auth/"):
            kind = "auth"
        elif method.upper() in ("GET", "LIST", "HEAD") or api_path.startswith("sys/capabilities"):
            kind = "reads"
        else:
            kind = "writes"
        with self._count_lock:
            self._counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self._count_lock:
            return dict(self._counts)

    def close(self) -> None:
        self.session.close()


def _tls(verify: bool | str, cert: Any) -> Tls:
    """hvac's ``verify`` (True, False or a CA path, from VAULT_CACERT / VAULT_CAPATH) and
    ``cert`` (from VAULT_CLIENT_CERT / VAULT_CLIENT_KEY) as the transport's settings."""
    certificate, key = cert if isinstance(cert, tuple) else (cert, None)
    if isinstance(verify, str):
        return Tls(ca=verify, cert=certificate, key=key)
    return Tls(verify=bool(verify), cert=certificate, key=key)
