"""One redactor: secret values are registered where they enter, and masked in everything we print."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

MASK = "***"
_MIN_LEN = 6  # shorter values would mask ordinary words and numbers


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()
        # values by their first _MIN_LEN characters, longest first: one dict lookup per text
        # position, so registering stays O(1) and masking O(len(text)) however many secrets a
        # run meets (one big regex alternation was rebuilt per value: quadratic at 1,000 accounts)
        self._by_prefix: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def register(self, value: object) -> None:
        """Remember a secret. Hex values are also masked without 0x, in either case, and without leading zeros."""
        text = str(value).strip()
        if len(text) < _MIN_LEN:
            return
        variants = {text}
        body = text[2:] if text[:2].lower() == "0x" else text
        if re.fullmatch(r"[0-9a-fA-F]+", body):
            for v in (body, body.lower(), body.upper(), body.lstrip("0") or "0"):
                if len(v) >= _MIN_LEN:
                    variants.update({v, v.lower(), v.upper()})
        with self._lock:
            for v in variants - self._values:
                key = v[:_MIN_LEN]
                same = (*self._by_prefix.get(key, ()), v)
                self._by_prefix[key] = tuple(sorted(same, key=len, reverse=True))
            self._values |= variants

    def redact(self, text: str) -> str:
        """Every registered value masked; where several start at one place, the longest."""
        find = self._by_prefix.get
        if not self._by_prefix or len(text) < _MIN_LEN:
            return text
        parts: list[str] = []
        start = i = 0
        last = len(text) - _MIN_LEN
        while i <= last:
            for value in find(text[i : i + _MIN_LEN], ()):
                if text.startswith(value, i):
                    parts += (text[start:i], MASK)
                    i = start = i + len(value)
                    break
            else:
                i += 1
        if not parts:
            return text
        parts.append(text[start:])
        return "".join(parts)

    def __contains__(self, value: str) -> bool:
        return value in self._values


def display_url(url: str) -> str:
    """scheme://host[:port] only: RPC and signer URLs often carry credentials or API keys in the path or query."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if not parts.scheme or not parts.hostname:
        return "<invalid URL>"
    return f"{parts.scheme}://{parts.hostname}{port}"
