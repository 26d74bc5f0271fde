"""One redactor: secret values are registered where they enter, and masked in everything we print.

What a registered value is masked as, wherever it appears in a line:

- itself, and its JSON-escaped forms (quotes, backslashes, control and non-ASCII
  characters escaped, ``/`` as ``\\/``), as it shows inside a logged request body;
- a hex value also without ``0x``, without leading zeros, in any mix of letter case
  (an EIP-55 checksummed address, a key a browser printed in upper case) and as the
  decimal integer a library may print for it;
- its base64 encodings (standard and URL-safe alphabets, padded or not, and the part
  that does not depend on its neighbours when it is encoded inside a longer value, as
  ``user:password`` is in a Basic auth header); for a hex value, those of its bytes.

Very short values: a value of fewer than ``MIN_LENGTH`` (6) characters is not masked,
and no derived form shorter than 8 characters is: masking them would blank ordinary
words and numbers in every line while protecting nothing, since a credential that short
is guessed faster than it is leaked. Every secret this tool handles is far longer (keys
of 64 hex digits, API secrets of 40 characters, Vault tokens and JWTs of dozens), and
a shorter password, passphrase or token must be replaced by a real one.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
MIN_LENGTH = 6  # shorter values would mask ordinary words and numbers
_MIN_DERIVED = 8  # an encoded form shorter than this says too little to be worth masking
_HEX = re.compile(r"[0-9a-fA-F]+")
_JSON_ESCAPED = re.compile(r'["\\/\x00-\x1f\x7f]')
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(text: str) -> str:
    """ASCII letters to lower case, nothing else: the length never changes, so positions hold."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


class Redactor:
    def __init__(self) -> None:
        # Values by their first MIN_LENGTH characters (case-folded): one dict lookup per text
        # position, so registering stays O(1) and masking O(len(text)) however many secrets a
        # run meets. Hex forms match in any letter case and are kept folded, in their own
        # table; each table holds a value alone, or several sharing a prefix longest first.
        # Nothing else is kept per value: at 10,000 accounts there are some 200,000 of them.
        self._exact: dict[str, str | tuple[str, ...]] = {}
        self._any_case: dict[str, str | tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def register(self, value: object) -> None:
        """Remember a secret, with every form listed in the module docstring."""
        text = str(value).strip()
        if len(text) < MIN_LENGTH or text in self:
            return
        exact: set[str] = {text}
        folded: set[str] = set()
        body = text[2:] if text[:2].lower() == "0x" else text
        if _HEX.fullmatch(body):
            for v in (text, body, body.lstrip("0") or "0"):
                if len(v) >= MIN_LENGTH:
                    folded.add(_fold(v))
            if len(body) >= 16:
                exact.add(str(int(body, 16)))
            # a hex key travels base64-encoded as bytes (a JWK, a protobuf dump), not as text
            exact |= _base64_forms(bytes.fromhex(body if len(body) % 2 == 0 else "0" + body))
        else:
            exact |= _json_forms(text)
            exact |= _base64_forms(text.encode())
        with self._lock:
            for table, forms in ((self._exact, exact - folded), (self._any_case, folded)):
                for v in forms:
                    _add(table, v)

    def register_url(self, url: str) -> None:
        """The parts of a URL that may hold credentials: user info, path, query and fragment.

        Scheme, host and port stay readable (``display_url`` prints only those anyway); a
        provider key in the path (``/v2/<key>``) or the query is masked in every line,
        library debug logs of the request line included.
        """
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        for piece in (parts.username, parts.password, parts.query, parts.fragment):
            if piece:
                self.register(piece)
        path = parts.path.strip("/")
        if path:
            self.register(parts.path)
            self.register(path)
        for _, value in parse_qsl(parts.query, keep_blank_values=False):
            self.register(value)

    def register_interpolated(self, value: str) -> None:
        """A value ``${VAR}`` put into the manifest: a URL's secret parts, or the whole value."""
        try:
            parts = urlsplit(value.strip())
            is_url = bool(parts.scheme and parts.hostname)
        except ValueError:
            is_url = False
        if is_url:
            self.register_url(value.strip())
        else:
            self.register(value)

    def redact(self, text: str) -> str:
        """Every registered value masked; where several start at one place, the longest."""
        exact, any_case = self._exact.get, self._any_case.get
        if not (self._exact or self._any_case) or len(text) < MIN_LENGTH:
            return text
        low = _fold(text)
        parts: list[str] = []
        start = i = 0
        last = len(text) - MIN_LENGTH
        while i <= last:
            key = low[i : i + MIN_LENGTH]
            found, folded = exact(key), any_case(key)
            if found is None and folded is None:
                i += 1
                continue
            length = max(_longest_at(found, text, i), _longest_at(folded, low, i))
            if length:
                parts += (text[start:i], MASK)
                i = start = i + length
            else:
                i += 1
        if not parts:
            return text
        parts.append(text[start:])
        return "".join(parts)

    def __contains__(self, value: str) -> bool:
        return _holds(self._exact, value) or _holds(self._any_case, _fold(value))


def _entries(found: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if found is None:
        return ()
    return (found,) if isinstance(found, str) else found


def _holds(table: dict[str, str | tuple[str, ...]], value: str) -> bool:
    return value in _entries(table.get(_fold(value[:MIN_LENGTH])))


def _add(table: dict[str, str | tuple[str, ...]], value: str) -> None:
    key = _fold(value[:MIN_LENGTH])
    same = _entries(table.get(key))
    if value in same:
        return
    table[key] = value if not same else tuple(sorted((*same, value), key=len, reverse=True))


def _longest_at(found: str | tuple[str, ...] | None, text: str, i: int) -> int:
    """The length of the longest of ``found`` that ``text`` holds at ``i``; 0 for none."""
    for value in _entries(found):  # longest first
        if text.startswith(value, i):
            return len(value)
    return 0


def _json_forms(text: str) -> set[str]:
    if text.isascii() and not _JSON_ESCAPED.search(text):
        return set()
    forms = {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    forms |= {f.replace("/", "\\/") for f in forms}
    return {f for f in forms if len(f) >= MIN_LENGTH}


def _base64_forms(data: bytes) -> set[str]:
    """The value's own encodings, and for each of the three alignments inside a longer value,
    the characters that only its bytes decide (whole 3-byte groups of its own)."""
    whole = base64.b64encode(data).decode()
    forms = {whole, whole.rstrip("="), whole[: 4 * (len(data) // 3)]}
    for offset in (1, 2):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        # the first group mixes the neighbour's bytes with ours, and so may the last
        forms.add(encoded[4 : 4 * ((offset + len(data)) // 3)])
    forms |= {f.replace("+", "-").replace("/", "_") for f in forms}
    return {f for f in forms if len(f) >= _MIN_DERIVED}


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
