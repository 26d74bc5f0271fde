"""One writer for a command's stdout and stderr: every line goes out whole, under one lock.

``print`` writes the text and its newline in two calls, so two threads printing at once
can put two events on one line and an empty line after them; here each line, or block
of lines, is one write.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from typing import TextIO


class Lines:
    """``out``/``err``: the streams (default: sys.stdout/sys.stderr as they are at each write)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out
        self._err = err
        self.lock = threading.RLock()

    @property
    def stdout(self) -> TextIO:
        return self._out or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self._err or sys.stderr

    def out(self, text: str) -> None:
        self._write(self.stdout, text)

    def err(self, text: str) -> None:
        self._write(self.stderr, text)

    def _write(self, stream: TextIO, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        with self.lock:
            stream.write(text)
            stream.flush()


def rich_terminal(stream: TextIO) -> bool:
    """A terminal that takes control codes; False where they must not go: not a terminal, NO_COLOR set, or TERM=dumb."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return False
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM", "") != "dumb"


def styled(text: str, *, color: bool) -> str:
    """``text`` with its rich markup (the plan's colors) as control codes; without color the
    text has no markup, and goes out as it is."""
    if not color:
        return text
    from rich.console import Console

    console = Console(
        file=io.StringIO(),
        force_terminal=True,
        highlight=False,
        width=10_000,
        color_system="standard",
    )
    with console.capture() as captured:
        console.print(text, end="", soft_wrap=True)
    return captured.get()
