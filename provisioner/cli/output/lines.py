"""One writer for a command's stdout and stderr: every line goes out whole, under one lock.

``print`` writes the text and its newline in two calls, so two threads printing at once
can put two events on one line and an empty line after them; here each line, or block
of lines, is one write.
"""

from __future__ import annotations

import io
import os
import re
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


# C0 and C1 control characters but tab and newline (ESC starts every terminal control sequence),
# and the bidirectional overrides that reorder what a reader sees
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# the only markup a plan's text carries: whole lines painted by render_text
_PAINTED = re.compile(r"\[(green|yellow|red)\](.*)\[/\1\]", re.S)


def printable(text: str) -> str:
    """``text`` without control characters: a plan's words come from files, Vault and servers."""
    return _CONTROL.sub("", text)


def styled(text: str, *, color: bool) -> str:
    """``text`` with the plan's colors (lines painted ``[green]...[/green]`` by render_text) as
    control codes; without color the text has no markup, and goes out as it is. Either way no
    control character of the text's own goes out, and nothing else in it is read as markup."""
    text = printable(text)
    if not color:
        return text
    from rich.console import Console
    from rich.text import Text

    out = Text()
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        painted = _PAINTED.fullmatch(body)
        if painted:
            out.append(painted.group(2), style=painted.group(1))
        else:
            out.append(body)
        out.append(line[len(body) :])
    console = Console(
        file=io.StringIO(),
        force_terminal=True,
        highlight=False,
        width=10_000,
        color_system="standard",
    )
    with console.capture() as captured:
        console.print(out, end="", soft_wrap=True)
    return captured.get()
