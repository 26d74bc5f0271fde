"""StarkWare's Pedersen hash and ECDSA verification on the STARK curve, fast.

Two implementations of the same two functions:

- native: StarkWare's crypto-cpp (``libcrypto_c_exports``) as the ``crypto-cpp-py``
  wheel ships it, loaded with ctypes. The wheel's own Python wrapper is never
  imported: it wants a sympy newer than the one dydx-v3-python pins, so the
  Makefile installs the wheel without its dependencies and only its shared
  library is used;
- pure Python, when the library is absent: fixed-base tables (4-bit windows) for
  the four Pedersen points and the generator, Jacobian coordinates, one inversion
  per result.

Signatures are ``(r, s)``; as in StarkEx, the public key is an x coordinate only
and either of its two points verifies.

The Jacobian double/add look like those of ``provisioner/clients/stark_curve.py`` on
purpose: the emulator stands in for dYdX and imports nothing of the client it is a judge
for (no module under ``provisioner/sandbox/emulator`` does), so a slip in the client's curve
arithmetic shows as a refused signature here instead of being shared.
"""

from __future__ import annotations

import ctypes
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path

FIELD_PRIME = 2**251 + 17 * 2**192 + 1
EC_ORDER = 0x800000000000010FFFFFFFFFFFFFFFFB781126DCAE7B2321E66A241ADC64D2F
ALPHA = 1
BETA = 0x06F21413EFBE40DE150E596D72F7A8C5609AD26C15C915C1F4CDFCB99CEE9E89
N_ELEMENT_BITS = 251

Point = tuple[int, int]
GENERATOR: Point = (
    0x1EF15C18599971B7BECED415A40F0C7DEACFD9B0D1819E03D723D8BC943CFCA,
    0x5668060AA49730B7BE4801DF46EC62DE53ECD11ABE43A32873000C36E8DC1F,
)
# StarkWare's Pedersen points: the shift point, then P1..P4 (bit 0 and bit 248 of each element).
SHIFT_POINT: Point = (
    0x49EE3EBA8C1600700EE1B87EB599F16716B0B1022947733551FDE4050CA6804,
    0x3CA0CFE4B3BC6DDF346D49D06EA0ED34E621062C0E056C1D0405D266E10268A,
)
PEDERSEN_POINTS: tuple[Point, Point, Point, Point] = (
    (
        0x234287DCBAFFE7F969C748655FCA9E58FA8120B6D56EB0C1080D17957EBE47B,
        0x3B056F100F96FB21E889527D41F4E39940135DD7A6C94CC6ED0268EE89E5615,
    ),
    (
        0x4FA56F376C83DB33F9DAB2656558F3399099EC1DE5E3018B7A6932DBA8AA378,
        0x3FA0984C931C9E38113E0C0E47E4401562761F92A7A23B45168F4E80FF5B54D,
    ),
    (
        0x4BA4CC166BE8DEC764910F75B45F74B40C690C74709E90F3AA372F0BD2D6997,
        0x40301CF5C1751F4B971E46C4EDE85FCAC5C59A5CE5AE7C48151F27B24B219C,
    ),
    (
        0x54302DCB0E6CC1C6E44CCA8F61A63BB2CA65048D53FB325D36FF12C49A58202,
        0x1B77B3E37D13504B348046268D8AE25CE98AD783C25561A879DCC77E99C2426,
    ),
)
_LOW_BITS = 248
_P = FIELD_PRIME


# -- pure Python --------------------------------------------------------------------------
Jacobian = tuple[int, int, int]  # z == 0 is the point at infinity
_INFINITY: Jacobian = (1, 1, 0)


def _double(p: Jacobian) -> Jacobian:
    x, y, z = p
    if z == 0 or y == 0:
        return _INFINITY
    yy = y * y % _P
    s = 4 * x * yy % _P
    zz = z * z % _P
    m = (3 * x * x + ALPHA * zz * zz) % _P
    x3 = (m * m - 2 * s) % _P
    return x3, (m * (s - x3) - 8 * yy * yy) % _P, 2 * y * z % _P


def _add_affine(p: Jacobian, q: Point) -> Jacobian:
    """p + q for an affine q (mixed addition)."""
    x1, y1, z1 = p
    if z1 == 0:
        return q[0], q[1], 1
    zz = z1 * z1 % _P
    u2 = q[0] * zz % _P
    s2 = q[1] * zz * z1 % _P
    h = (u2 - x1) % _P
    r = (s2 - y1) % _P
    if h == 0:
        return _double(p) if r == 0 else _INFINITY
    hh = h * h % _P
    hhh = h * hh % _P
    v = x1 * hh % _P
    x3 = (r * r - hhh - 2 * v) % _P
    return x3, (r * (v - x3) - y1 * hhh) % _P, z1 * h % _P


def _add(p: Jacobian, q: Jacobian) -> Jacobian:
    if q[2] == 0:
        return p
    if p[2] == 0:
        return q
    x1, y1, z1 = p
    x2, y2, z2 = q
    z1z1, z2z2 = z1 * z1 % _P, z2 * z2 % _P
    u1, u2 = x1 * z2z2 % _P, x2 * z1z1 % _P
    s1, s2 = y1 * z2 * z2z2 % _P, y2 * z1 * z1z1 % _P
    h, r = (u2 - u1) % _P, (s2 - s1) % _P
    if h == 0:
        return _double(p) if r == 0 else _INFINITY
    hh = h * h % _P
    hhh = h * hh % _P
    v = u1 * hh % _P
    x3 = (r * r - hhh - 2 * v) % _P
    return x3, (r * (v - x3) - s1 * hhh) % _P, z1 * z2 * h % _P


def _affine_x(p: Jacobian) -> int | None:
    x, _, z = p
    if z == 0:
        return None
    return x * pow(z * z % _P, -1, _P) % _P


def _to_affine(p: Jacobian) -> Point:
    x, y, z = p
    zi = pow(z, -1, _P)
    zi2 = zi * zi % _P
    return x * zi2 % _P, y * zi2 * zi % _P


@cache
def _table(base: Point, bits: int) -> tuple[tuple[Point, ...], ...]:
    """For each 4-bit window i of a ``bits``-bit scalar: the affine points k * 16^i * base, k = 1..15."""
    windows = []
    step: Jacobian = (base[0], base[1], 1)
    for _ in range((bits + 3) // 4):
        row: list[Point] = []
        acc: Jacobian = _INFINITY
        for _k in range(15):
            acc = _add(acc, step)
            row.append(_to_affine(acc))
        windows.append(tuple(row))
        step = _double(_double(_double(_double(step))))
    return tuple(windows)


def _fixed_base_mul(acc: Jacobian, base: Point, bits: int, scalar: int) -> Jacobian:
    table = _table(base, bits)
    i = 0
    while scalar:
        digit = scalar & 15
        if digit:
            acc = _add_affine(acc, table[i][digit - 1])
        scalar >>= 4
        i += 1
    return acc


def _variable_mul(point: Point, scalar: int) -> Jacobian:
    acc = _INFINITY
    for bit in bin(scalar)[2:]:
        acc = _double(acc)
        if bit == "1":
            acc = _add_affine(acc, point)
    return acc


def _y_of(x: int) -> int | None:
    """One y with (x, y) on the curve, or None."""
    rhs = (x * x * x + ALPHA * x + BETA) % _P
    y = _sqrt(rhs)
    return y if y is not None and y * y % _P == rhs else None


def _sqrt(a: int) -> int | None:
    """Tonelli-Shanks in the STARK field (p - 1 = 2^192 * q, q odd)."""
    if a == 0:
        return 0
    if pow(a, (_P - 1) // 2, _P) != 1:
        return None
    q, s = _P - 1, 0
    while q % 2 == 0:
        q //= 2
        s += 1
    z = 3  # the field's generator, a non-residue
    m, c, t, r = s, pow(z, q, _P), pow(a, q, _P), pow(a, (q + 1) // 2, _P)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2 = t2 * t2 % _P
            i += 1
        b = pow(c, 1 << (m - i - 1), _P)
        m, c, t, r = i, b * b % _P, t * b * b % _P, r * b % _P
    return r


def py_pedersen_hash(a: int, b: int) -> int:
    acc: Jacobian = (SHIFT_POINT[0], SHIFT_POINT[1], 1)
    p1, p2, p3, p4 = PEDERSEN_POINTS
    acc = _fixed_base_mul(acc, p1, _LOW_BITS, a & ((1 << _LOW_BITS) - 1))
    acc = _fixed_base_mul(acc, p2, 4, a >> _LOW_BITS)
    acc = _fixed_base_mul(acc, p3, _LOW_BITS, b & ((1 << _LOW_BITS) - 1))
    acc = _fixed_base_mul(acc, p4, 4, b >> _LOW_BITS)
    x = _affine_x(acc)
    assert x is not None
    return x


def py_verify(msg_hash: int, r: int, s: int, public_key: Point) -> bool:
    w = pow(s, -1, EC_ORDER)
    zg = _fixed_base_mul(_INFINITY, GENERATOR, N_ELEMENT_BITS + 1, msg_hash * w % EC_ORDER)
    rq = _variable_mul(public_key, r * w % EC_ORDER)
    neg_rq = (rq[0], -rq[1] % _P, rq[2])
    return r in (_affine_x(_add(zg, rq)), _affine_x(_add(zg, neg_rq)))


# -- native -------------------------------------------------------------------------------
def _load_native() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("crypto_cpp_py")
    if spec is None or not spec.submodule_search_locations:
        return None
    site = Path(next(iter(spec.submodule_search_locations))).parent
    candidates = sorted(site.glob("libcrypto_c_exports*"))
    if not candidates:
        return None
    try:
        lib = ctypes.CDLL(str(candidates[0]))
    except OSError:
        return None
    lib.Hash.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.Hash.restype = ctypes.c_int
    lib.Verify.argtypes = [ctypes.c_char_p] * 4
    lib.Verify.restype = ctypes.c_bool
    return lib


_NATIVE = _load_native()


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def native_pedersen_hash(a: int, b: int) -> int:
    assert _NATIVE is not None
    out = ctypes.create_string_buffer(1024)
    if _NATIVE.Hash(_le(a), _le(b), out) != 0:
        raise ValueError(out.raw.rstrip(b"\0").decode(errors="replace"))
    return int.from_bytes(out.raw[:32], "little")


def native_verify(msg_hash: int, r: int, s: int, public_key: Point) -> bool:
    assert _NATIVE is not None
    w = pow(s, -1, EC_ORDER)
    return bool(_NATIVE.Verify(_le(public_key[0]), _le(msg_hash), _le(r), _le(w)))


BACKEND = "native" if _NATIVE is not None else "python"
pedersen_hash: Callable[[int, int], int] = (
    native_pedersen_hash if _NATIVE is not None else py_pedersen_hash
)
_verify_impl: Callable[[int, int, int, Point], bool] = (
    native_verify if _NATIVE is not None else py_verify
)


@cache
def point_of(x: int) -> Point | None:
    """The public key with x coordinate ``x`` (either of its two points), or None if x is on no point."""
    y = _y_of(x) if 0 < x < _P else None
    return None if y is None else (x, y)


def verify(msg_hash: int, r: int, s: int, public_key: Point) -> bool:
    """True when (r, s) signs ``msg_hash`` for the STARK key ``public_key`` (a point on the curve).

    The bounds are StarkWare's verifier's own, checked first so neither backend sees
    input it would assert on; its signer never emits a w = 1/s of 2^251 or more.
    """
    bound = 1 << N_ELEMENT_BITS
    if not (0 < public_key[0] < bound and 0 < msg_hash < bound and 0 < r < bound):
        return False
    if not 0 < s < EC_ORDER or not pow(s, -1, EC_ORDER) < bound:
        return False
    return _verify_impl(msg_hash, r, s, public_key)
