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
        self._pattern: re.Pattern[str] | None = None
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
            if variants <= self._values:
                return
            self._values |= variants
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

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
