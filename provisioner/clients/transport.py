"""The one HTTP transport, made once per run and handed to every client.

Requests go straight to their server over kept-alive connections of ``direct`` (sockets and
httptools: a fraction of urllib3's CPU per request), or through urllib3 where a proxy is in
the way or the method is HEAD.

``provisioner.connections`` makes one ``HttpTransport`` and gives it to the Vault client
(as hvac's adapter), the chain JSON-RPC, the dYdX client and remote signers; tests give
them a fake with the same ``request`` method (``tests/support/transport.py``).

Redirects are followed here, each hop sent once, and only within the origin (scheme,
host and port) of the request: a redirect anywhere else comes back to the caller as the
3xx answer it is, so no token, signature or body leaves for another host or for plain
HTTP. A failure without an answer is a ``TransportError`` that says whether the request
may have reached the server; ``provisioner.clients.retry`` reads that.

Proxies come from the environment as everywhere else (``HTTPS_PROXY``, ``HTTP_PROXY``,
``NO_PROXY``, read once when the transport is made); loopback addresses never go through
one, so a local Vault agent or the sandbox is reached directly.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.ssl_ import create_urllib3_context

from provisioner.clients import direct

POOL_CONNECTIONS = 128  # the threads of a parallel run share one pool per host
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class TransportError(Exception):
    """No answer came back. ``maybe_sent`` False: the request certainly never reached the
    server (no connection was made); True: it may have, and may have taken effect."""

    def __init__(self, reason: str, *, maybe_sent: bool, timeout: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent
        self.timeout = timeout


@dataclass(frozen=True)
class Tls:
    """How a TLS server is checked: ``ca`` a bundle file or directory (default: certifi's);
    ``verify`` False checks nothing; ``cert`` and ``key``: a client certificate."""

    verify: bool = True
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def pool_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED" if self.verify else "CERT_NONE"}
        if self.verify:
            if self.ca and os.path.isdir(self.ca):
                kwargs["ca_cert_dir"] = self.ca
            else:
                kwargs["ca_certs"] = self.ca or certifi.where()
        if self.cert:
            kwargs["cert_file"] = self.cert
        if self.key:
            kwargs["key_file"] = self.key
        return kwargs

    def ssl_context(self) -> ssl.SSLContext:
        """The direct connections' context, made as urllib3 makes its own (TLS 1.2 and up, no
        common-name fallback, no session tickets) and loaded from ``pool_kwargs``, so both
        paths trust the same CAs and present the same client certificate."""
        kwargs = self.pool_kwargs()
        context = create_urllib3_context(cert_reqs=getattr(ssl, kwargs["cert_reqs"]))
        if "ca_certs" in kwargs or "ca_cert_dir" in kwargs:
            context.load_verify_locations(
                cafile=kwargs.get("ca_certs"), capath=kwargs.get("ca_cert_dir")
            )
        if "cert_file" in kwargs:
            context.load_cert_chain(kwargs["cert_file"], kwargs.get("key_file"))
        return context


@dataclass(frozen=True)
class Response:
    """The parts of an answer the clients read; ``headers`` is case-insensitive."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes = field(repr=False)  # a Vault read's or a new API key's secret
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The decoded body; ValueError when it is not JSON."""
        return json.loads(self.content)


class Transport(Protocol):
    """What the clients send through: one exchange, redirects within the origin followed."""

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        tls: Tls | None = None,
        connect_timeout: float | None = None,
    ) -> Response: ...

    def close(self) -> None: ...


class HttpTransport:
    """Thread-safe: one keep-alive connection pool per (origin, TLS settings)."""

    def __init__(self, *, tls: Tls | None = None, env: Mapping[str, str] | None = None) -> None:
        self._default_tls = tls or Tls()
        self._manager = urllib3.PoolManager(maxsize=POOL_CONNECTIONS, block=False)
        self._proxies = _proxies_from(os.environ if env is None else env)
        self._proxy_managers: dict[str, urllib3.ProxyManager] = {}
        self._pools: dict[tuple[str, Tls], tuple[urllib3.HTTPConnectionPool, bool]] = {}
        self._origins: dict[tuple[str, Tls], direct.Origin | None] = {}
        self._lock = threading.Lock()
        self._timeouts: dict[tuple[float, float], urllib3.Timeout] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        tls: Tls | None = None,
        connect_timeout: float | None = None,
    ) -> Response:
        """One exchange; ``timeout`` bounds the connect (unless ``connect_timeout`` does) and
        each wait for the answer."""
        parts = urlsplit(url)
        sent = dict(headers or {})
        if parts.username is not None or parts.password is not None:
            credentials = f"{parts.username or ''}:{parts.password or ''}"
            sent.setdefault(
                "Authorization", urllib3.make_headers(basic_auth=credentials)["authorization"]
            )
            parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
        payload = body.encode() if isinstance(body, str) else body
        origin = (parts.scheme, parts.netloc.lower())
        tls = tls or self._default_tls
        limits = (timeout if connect_timeout is None else connect_timeout, timeout)
        for _hop in range(MAX_REDIRECTS + 1):
            answer = self._send(method, parts.geturl(), payload, sent, limits, tls)
            location = answer.headers.get("Location")
            if answer.status_code not in _REDIRECTS or not location:
                return answer
            target = urlsplit(urljoin(parts.geturl(), location))
            if (target.scheme, target.netloc.lower()) != origin:
                return answer  # elsewhere: not followed, the caller sees the 3xx
            if answer.status_code == 303 or (answer.status_code in (301, 302) and method == "POST"):
                method, payload = "GET", None  # what browsers and requests do
                sent = {k: v for k, v in sent.items() if k.lower() != "content-type"}
            parts = target
        return answer

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        tls: Tls,
    ) -> Response:
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        origin = f"{parts.scheme}://{parts.netloc}"
        straight = self._direct(origin, tls) if method != "HEAD" else None
        if straight is not None:
            try:
                status, reason, answer_headers, content = straight.request(
                    method, path, headers, body, connect_timeout=timeout[0], read_timeout=timeout[1]
                )
            except direct.Failed as exc:
                raise TransportError(
                    exc.reason, maybe_sent=exc.maybe_sent, timeout=exc.timeout
                ) from None
            return Response(status, answer_headers, content, reason)
        pool, absolute = self._pool(origin, tls)
        try:
            answer = pool.urlopen(
                method,
                url if absolute else path,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=self._timeout(*timeout),
            )
        except (NewConnectionError, NameResolutionError) as exc:
            raise TransportError(_connect_reason(exc), maybe_sent=False) from None
        except ConnectTimeoutError:
            raise TransportError("connect timeout", maybe_sent=False, timeout=True) from None
        except SSLError as exc:
            # one class for a failed handshake and for a bad record in the answer: only a
            # refused certificate is surely the handshake's, anything else may follow the request
            cause = exc.args[0] if exc.args else None
            if isinstance(cause, ssl.CertificateError):
                raise TransportError(direct.certificate_reason(cause), maybe_sent=False) from None
            raise TransportError("TLS failed (SSLError)", maybe_sent=True) from None
        except ProxyError:
            # urllib3 raises it only while the way through the proxy is not yet up
            raise TransportError(
                "the proxy refused or could not be reached", maybe_sent=False
            ) from None
        except ReadTimeoutError:
            raise TransportError("no answer in time", maybe_sent=True, timeout=True) from None
        except (HTTPError, OSError) as exc:
            raise TransportError(
                f"connection dropped ({type(exc).__name__})", maybe_sent=True
            ) from None
        return Response(answer.status, answer.headers, answer.data, answer.reason or "")

    def _direct(self, origin: str, tls: Tls) -> direct.Origin | None:
        """The direct connections to an origin; None when a proxy is in the way."""
        key = (origin, tls)
        try:
            return self._origins[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._origins:
                self._origins[key] = self._new_origin(origin, tls)
            return self._origins[key]

    def _new_origin(self, origin: str, tls: Tls) -> direct.Origin | None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https"):
            # not a typo sent in the clear (htps://), nor a ws:// URL spoken to as HTTP
            raise TransportError(
                f"{parts.scheme or 'no'} scheme: only http:// and https:// URLs are sent to",
                maybe_sent=False,
            )
        if self._proxy_for(origin) is not None:
            return None
        secure = parts.scheme == "https"
        try:
            context = tls.ssl_context() if secure else None
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(
                f"the TLS settings could not be loaded ({type(exc).__name__})", maybe_sent=False
            ) from None
        return direct.Origin(parts.hostname or "", parts.port or (443 if secure else 80), context)

    def _pool(self, origin: str, tls: Tls) -> tuple[urllib3.HTTPConnectionPool, bool]:
        """The pool for an origin, and whether requests name the absolute URL (plain HTTP
        through a forwarding proxy; HTTPS through one is a CONNECT tunnel)."""
        key = (origin, tls)
        found = self._pools.get(key)
        if found is None:
            with self._lock:
                found = self._pools.get(key)
                if found is None:
                    kwargs = tls.pool_kwargs() if origin.startswith("https:") else None
                    proxy = self._proxy_for(origin)
                    if proxy is None:
                        pool = self._manager.connection_from_url(origin, pool_kwargs=kwargs)
                    else:
                        pool = self._proxy_manager(proxy).connection_from_url(
                            origin, pool_kwargs=kwargs
                        )
                    found = self._pools[key] = (
                        pool,
                        proxy is not None and origin.startswith("http:"),
                    )
        return found

    def _proxy_for(self, origin: str) -> str | None:
        parts = urlsplit(origin)
        proxy = self._proxies.get(parts.scheme)
        host = parts.hostname or ""
        if not proxy or _is_loopback(host):
            return None
        if _bypassed(host, self._proxies.get("no", "")):
            return None
        return proxy

    def _proxy_manager(self, proxy: str) -> urllib3.ProxyManager:
        manager = self._proxy_managers.get(proxy)
        if manager is None:
            parts = urlsplit(proxy)
            headers = None
            if parts.username is not None:
                credentials = f"{parts.username}:{parts.password or ''}"
                headers = urllib3.make_headers(proxy_basic_auth=credentials)
                parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
            manager = urllib3.ProxyManager(
                parts.geturl(), maxsize=POOL_CONNECTIONS, block=False, proxy_headers=headers
            )
            self._proxy_managers[proxy] = manager
        return manager

    def _timeout(self, connect: float, read: float) -> urllib3.Timeout:
        found = self._timeouts.get((connect, read))
        if found is None:
            found = self._timeouts[(connect, read)] = urllib3.Timeout(connect=connect, read=read)
        return found

    def close(self) -> None:
        with self._lock:
            for straight in self._origins.values():
                if straight is not None:
                    straight.close()
            self._origins.clear()
            self._pools.clear()
            for manager in self._proxy_managers.values():
                manager.clear()
        self._manager.clear()


def _proxies_from(env: Mapping[str, str]) -> dict[str, str]:
    """``{"http": url, "https": url, "no": hosts}`` from the usual variables, lower case first."""
    found: dict[str, str] = {}
    for scheme in ("http", "https", "no"):
        value = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")
        if value:
            found[scheme] = value
    return found


def _bypassed(host: str, no_proxy: str) -> bool:
    """``NO_PROXY`` as curl reads it: ``*``, or names that match the host or a domain above it."""
    host = host.lower().rstrip(".")
    for entry in no_proxy.replace(" ", "").lower().split(","):
        name = entry.split(":", 1)[0].lstrip("*").lstrip(".") if entry != "*" else "*"
        if name == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _connect_reason(exc: Exception) -> str:
    if isinstance(exc, NameResolutionError):
        return "host name not found"
    return "connection refused" if "refused" in str(exc).lower() else "could not connect"
