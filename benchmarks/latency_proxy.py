"""A TCP proxy on loopback that makes a local service answer from far away.

Each byte that crosses the proxy, either way, is held for half the round trip before it is
passed on, in the order it came (a slow link, not a narrow one: bytes in flight overlap). A
new connection costs ``connect_rtts`` round trips before its first byte can leave, as the
TCP handshake (1) and TLS 1.3's (1 more) do when a desk reaches dYdX, Vault or an RPC
provider over https; so a client that keeps its connections alive pays them once, and one
that opens a connection per request pays them every time.

The proxies run on one asyncio loop in a thread of their own: ``LatencyProxies`` starts and
stops them. Both ends are on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Link:
    """What a proxy adds: ``rtt`` seconds per round trip, ``connect_rtts`` of them to connect."""

    rtt: float
    connect_rtts: int = 2

    @property
    def one_way(self) -> float:
        return self.rtt / 2


class _Proxy:
    def __init__(self, upstream_port: int, link: Link) -> None:
        self.upstream_port = upstream_port
        self.link = link
        self.server: asyncio.Server | None = None
        self.connections = 0

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, LOOPBACK, 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        self.connections += 1
        ready = loop.time() + self.link.connect_rtts * self.link.rtt  # the handshakes
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, ready),
                self._pipe(up_reader, writer, 0.0),
                return_exceptions=True,
            )
        finally:  # both ways ended: a half-closed side may still have answered meanwhile
            writer.close()
            up_writer.close()

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, ready: float
    ) -> None:
        """Bytes from ``source`` to ``sink``, each chunk ``one_way`` after it arrived (and not
        before ``ready``); end of stream passed on the same way, in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    try:
                        sink.write_eof()
                    except (OSError, RuntimeError):
                        sink.close()  # cannot half-close: the other way ends with it
                    return
                sink.write(data)
                await sink.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                try:
                    data = await source.read(CHUNK)
                except OSError:
                    data = b""
                queue.put_nowait((max(loop.time(), ready) + self.link.one_way, data))
                if not data:
                    break
            await delivering
        except OSError:
            pass
        finally:
            if not delivering.done():
                delivering.cancel()
            with contextlib.suppress(BaseException):
                await delivering

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


class LatencyProxies:
    """Proxies on one event loop in a background thread; ``add`` returns the proxy's URL."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._proxies: dict[str, _Proxy] = {}
        self._thread.start()

    def add(self, url: str, link: Link) -> str:
        """A proxy in front of ``url`` (http://127.0.0.1:PORT...); the same URL through it."""
        parts = urlsplit(url)
        if parts.hostname != LOOPBACK or parts.port is None:
            raise ValueError(f"{url}: only {LOOPBACK}:PORT services are proxied")
        proxy = _Proxy(parts.port, link)
        asyncio.run_coroutine_threadsafe(proxy.start(), self._loop).result(10)
        proxied = parts._replace(netloc=f"{LOOPBACK}:{proxy.port}").geturl()
        self._proxies[proxied] = proxy
        return proxied

    async def _stop(self) -> None:
        for proxy in self._proxies.values():
            await proxy.stop()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # connections still open: their clients are gone or done
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def connections(self, url: str | None = None) -> int:
        """Connections accepted so far by the proxy ``add`` returned ``url`` for, or by all."""
        if url is not None:
            return self._proxies[url].connections
        return sum(p.connections for p in self._proxies.values())

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def latency_proxies() -> Iterator[LatencyProxies]:
    proxies = LatencyProxies()
    try:
        yield proxies
    finally:
        proxies.close()
