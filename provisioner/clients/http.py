"""HTTP for the clients: connection pools shared by threads, with the environment read once.

``requests`` spends about a millisecond of CPU on each request (session merging, hooks,
the cookie jar, and the environment: ``os.environ`` walked twice for proxies, a stat of
``~/.netrc``). Planning 1,000 converged accounts makes 3,000 requests, so that was most
of what a plan cost on our side. Each of our clients talks to one host:

- ``HttpTransport`` sends the hot requests (every dYdX call, every Vault read and write)
  through urllib3, the library requests itself sends with, or over plain HTTP through one
  keep-alive ``http.client`` connection per thread, and raises the very exceptions
  requests would (``requests.ConnectionError`` wrapping urllib3's error, ``ReadTimeout``,
  ...), so the retry policy classifies them unchanged;
- ``pooled_session`` prepares the requests sessions that stay (hvac's, the chain's).

Both take proxies and ``NO_PROXY``, netrc credentials and the CA bundle from the
environment once, for their host, as requests would have for each request.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.exceptions import ConnectTimeout, ProxyError, ReadTimeout, RetryError, SSLError
from requests.utils import get_auth_from_url, get_environ_proxies, get_netrc_auth, select_proxy
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.wait import wait_for_read

POOL_CONNECTIONS = 128  # the threads of a parallel run share one pool per host
MAX_REDIRECTS = 5  # Vault standbys redirect to the active node; requests followed up to 30


@dataclass(frozen=True)
class HttpResponse:
    """The parts of an answer the clients read; ``headers`` is case-insensitive."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    reason: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The decoded body; ValueError (like requests) when it is not JSON."""
        return json.loads(self.content)


class HttpTransport:
    """Thread-safe requests to one host. ``verify``: True, False or a CA bundle path (as in
    requests); ``cert``: a client certificate path, or (certificate, key)."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._headers = dict(headers or {})
        username, password = get_auth_from_url(base_url)
        auth = (username, password) if username or password else get_netrc_auth(base_url)
        if auth:
            self._headers.setdefault("Authorization", _basic(*auth))
        tls: dict[str, Any] = {"maxsize": POOL_CONNECTIONS, "block": False}
        if urlsplit(base_url).scheme == "https":
            if verify is False:
                tls["cert_reqs"] = "CERT_NONE"
            else:
                tls["cert_reqs"] = "CERT_REQUIRED"
                bundle = verify if isinstance(verify, str) else ca_bundle_from_env()
                if bundle and os.path.isdir(bundle):  # VAULT_CAPATH names a directory
                    tls["ca_cert_dir"] = bundle
                else:
                    tls["ca_certs"] = bundle or certifi.where()
            if isinstance(cert, tuple):
                tls["cert_file"], tls["key_file"] = cert
            elif cert:
                tls["cert_file"] = cert
        proxy = select_proxy(base_url, get_environ_proxies(base_url))
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy if "://" in proxy else f"http://{proxy}", **tls)
            if proxy
            else urllib3.PoolManager(**tls)
        )
        # Without a proxy, requests to the base URL's host skip the PoolManager: over plain
        # HTTP (a local Vault agent, the sandbox) through one keep-alive http.client connection
        # per thread, which costs half the CPU of urllib3's pool (that was a third of a
        # plan's client CPU); over TLS straight to urllib3's pool for the host. Redirects (a
        # Vault standby) are followed through the PoolManager.
        base = urlsplit(_strip_userinfo(base_url))
        self._origin = f"{base.scheme}://{base.netloc}"
        direct = not proxy
        plain = direct and base.scheme == "http"
        self._plain = _KeepAlive(base.hostname or "", base.port or 80) if plain else None
        self._host_pool = (
            self._pool.connection_from_url(self._origin) if direct and not plain else None
        )
        # connect errors raise at once (as MaxRetryError, like requests), read errors as
        # themselves; redirects are followed: whether to repeat a request is the caller's call
        self._retries = urllib3.Retry(
            total=None, connect=0, read=False, redirect=MAX_REDIRECTS, status=0, other=0
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """One exchange (redirects followed); failures raised as requests' exceptions."""
        url = _strip_userinfo(url)
        payload = body.encode() if isinstance(body, str) else body
        all_headers = {**self._headers, **(headers or {})}
        path = url[len(self._origin) :] if url.startswith(self._origin + "/") else None
        if self._plain is not None and path is not None:
            direct = self._plain.request(method, path, payload, all_headers, timeout)
            if direct is not None:
                return direct  # else a redirect: the PoolManager below follows it
        limits = urllib3.Timeout(connect=timeout, read=timeout)
        try:
            answer = None
            if self._host_pool is not None and path is not None:
                answer = self._host_pool.urlopen(
                    method,
                    path,
                    body=payload,
                    headers=all_headers,
                    timeout=limits,
                    retries=self._retries,
                    redirect=False,
                )
                if answer.get_redirect_location():
                    answer = None  # let the PoolManager follow it, wherever it leads
            if answer is None:
                answer = self._pool.request(
                    method,
                    url,
                    body=payload,
                    headers=all_headers,
                    timeout=limits,
                    retries=self._retries,
                )
        except (ProtocolError, OSError) as exc:
            raise requests.ConnectionError(exc) from None
        except MaxRetryError as exc:
            if isinstance(exc.reason, ConnectTimeoutError) and not isinstance(
                exc.reason, NewConnectionError
            ):
                raise ConnectTimeout(exc) from None
            if isinstance(exc.reason, ResponseError):
                raise RetryError(exc) from None
            if isinstance(exc.reason, Urllib3ProxyError):
                raise ProxyError(exc) from None
            if isinstance(exc.reason, Urllib3SSLError):
                raise SSLError(exc) from None
            raise requests.ConnectionError(exc) from None
        except ClosedPoolError as exc:
            raise requests.ConnectionError(exc) from None
        except Urllib3ProxyError as exc:
            raise ProxyError(exc) from None
        except Urllib3SSLError as exc:
            raise SSLError(exc) from None
        except ReadTimeoutError as exc:
            raise ReadTimeout(exc) from None
        except HTTPError as exc:
            raise requests.ConnectionError(exc) from None
        return HttpResponse(answer.status, answer.headers, answer.data, answer.reason or "")

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()
        self._pool.clear()


class _KeepAlive:
    """One keep-alive ``http.client`` connection per thread to a plain-HTTP host.

    A connection found readable before a request (the server closed it, or sent
    something unasked) is replaced, as urllib3 does; failures are raised as the
    exceptions requests would raise. ``request`` returns None for a redirect: the
    caller sends it again through urllib3, which follows it.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> HttpResponse | None:
        conn = self._connection(timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers))
            answer = conn.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            conn.close()
            raise ReadTimeout(exc) from None
        except (http.client.HTTPException, OSError) as exc:
            conn.close()
            raise requests.ConnectionError(exc) from None
        if answer.will_close:
            conn.close()
        if 300 <= answer.status < 400 and answer.getheader("Location"):
            return None
        headers_read = urllib3.HTTPHeaderDict(answer.getheaders())
        return HttpResponse(answer.status, headers_read, content, answer.reason or "")

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and wait_for_read(conn.sock, timeout=0.0):
            conn.close()  # dropped by the server, or a stray answer: never reuse it
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        if conn.sock is None:
            conn.timeout = timeout
            try:
                conn.connect()
            except TimeoutError as exc:
                conn.close()
                raise ConnectTimeout(exc) from None
            except OSError as exc:
                conn.close()
                # the shape requests gives a refused connection: the retry policy reads it
                # as "nothing was sent"
                why = f"Failed to establish a new connection: {exc}"
                refused = NewConnectionError(None, why)  # type: ignore[arg-type]
                where = f"{self._host}:{self._port}"
                failed = MaxRetryError(None, where, refused)  # type: ignore[arg-type]
                raise requests.ConnectionError(failed) from None
        else:
            conn.sock.settimeout(timeout)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def pooled_session(base_url: str, *, session: requests.Session | None = None) -> requests.Session:
    """``session`` (or a new one) with a connection pool for many threads and the environment's
    proxy, NO_PROXY, netrc and CA-bundle settings for ``base_url`` fixed once."""
    session = session or requests.Session()
    adapter = HTTPAdapter(pool_maxsize=POOL_CONNECTIONS, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # {} when NO_PROXY covers the host; hvac leaves None here
    session.proxies = {**(session.proxies or {}), **get_environ_proxies(base_url)}
    auth = get_netrc_auth(base_url)
    if auth and session.auth is None:
        session.auth = auth
    bundle = ca_bundle_from_env()
    if bundle and session.verify is True:
        session.verify = bundle  # what requests would pick per request for verify=True/None
    session.trust_env = False
    return session


def ca_bundle_from_env() -> str | None:
    """The CA bundle requests takes from the environment when told to verify with the default."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def _basic(username: str, password: str) -> str:
    return str(urllib3.make_headers(basic_auth=f"{username}:{password}")["authorization"])


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
