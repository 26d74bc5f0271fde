"""A tiny TCP forwarder the tests can take down and bring back: an RPC that is briefly gone."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``. ``down()`` closes the listener and every open
    connection (in-flight requests fail, new ones are refused); ``up()`` listens again on the
    same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._marker = b""
        self._actions: list[Callable[[], None]] = []
        self._armed: set[socket.socket] = set()  # client sockets awaiting a marked answer
        self.port = 0
        self.up()

    def after_answers(self, marker: bytes, actions: list[Callable[[], None]]) -> None:
        """Once the answer to a request containing ``marker`` has been passed back, run the
        next action: e.g. go down right after the node accepted a transaction."""
        with self._lock:
            self._marker, self._actions = marker, list(actions)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    client.close()
                    upstream.close()
                    return
                self._open.update({client, upstream})
            for a, b, c in ((client, upstream, client), (upstream, client, client)):
                threading.Thread(target=self._pump, args=(a, b, c), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, client: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                self._watch(data, client, request=source is client)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)

    def _watch(self, data: bytes, client: socket.socket, *, request: bool) -> None:
        action = None
        with self._lock:
            if request and self._marker and self._marker in data:
                self._armed.add(client)
            elif not request and client in self._armed:
                self._armed.discard(client)
                action = self._actions.pop(0) if self._actions else None
        if action is not None:  # here, not in a new thread: before the client's next request
            action()
