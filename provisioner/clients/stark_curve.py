"""The STARK curve's public keys: ``priv·G`` in Jacobian coordinates, one modular inverse.

dydx3 computes this point by point in affine coordinates with sympy's extended gcd
for every inverse: about 40 ms a key, which an apply of 100 fresh accounts paid 100
times under the GIL before the last of them could onboard. Same result (held to dydx3
and the reference vectors in ``tests/clients/dydx/test_wire_and_curve.py``), about 2 ms.

Curve: y² = x³ + αx + β over F_p, α = 1 (reference §3).
"""

from __future__ import annotations

PRIME = 2**251 + 17 * 2**192 + 1
ALPHA = 1
BETA = 0x06F21413EFBE40DE150E596D72F7A8C5609AD26C15C915C1F4CDFCB99CEE9E89
ORDER = 0x0800000000000010FFFFFFFFFFFFFFFFB781126DCAE7B2321E66A241ADC64D2F
GENERATOR = (
    0x01EF15C18599971B7BECED415A40F0C7DEACFD9B0D1819E03D723D8BC943CFCA,
    0x005668060AA49730B7BE4801DF46EC62DE53ECD11ABE43A32873000C36E8DC1F,
)

_Jacobian = tuple[int, int, int]  # (X, Y, Z) for (X/Z², Y/Z³); Z = 0 is the point at infinity
_INFINITY: _Jacobian = (0, 1, 0)


def public_key(private_key: int) -> tuple[int, int]:
    """(x, y) of ``private_key``·G; ``private_key`` must be in [1, ORDER)."""
    if not 0 < private_key < ORDER:
        raise ValueError("a STARK private key must be in [1, curve order)")
    x, y, z = _multiply(private_key, (*GENERATOR, 1))
    z_inv = pow(z, -1, PRIME)
    z_inv2 = z_inv * z_inv % PRIME
    return x * z_inv2 % PRIME, y * z_inv2 * z_inv % PRIME


def is_on_curve(x: int, y: int) -> bool:
    return (y * y - (x * x * x + ALPHA * x + BETA)) % PRIME == 0


def _multiply(k: int, point: _Jacobian) -> _Jacobian:
    result = _INFINITY
    for bit in bin(k)[2:]:
        result = _double(result)
        if bit == "1":
            result = _add(result, point)
    return result


def _double(p: _Jacobian) -> _Jacobian:
    x, y, z = p
    if z == 0 or y == 0:
        return _INFINITY
    yy = y * y % PRIME
    s = 4 * x * yy % PRIME
    zz = z * z % PRIME
    m = (3 * x * x + ALPHA * zz * zz) % PRIME
    x3 = (m * m - 2 * s) % PRIME
    y3 = (m * (s - x3) - 8 * yy * yy) % PRIME
    z3 = 2 * y * z % PRIME
    return x3, y3, z3


def _add(p: _Jacobian, q: _Jacobian) -> _Jacobian:
    if p[2] == 0:
        return q
    if q[2] == 0:
        return p
    x1, y1, z1 = p
    x2, y2, z2 = q
    z1z1 = z1 * z1 % PRIME
    z2z2 = z2 * z2 % PRIME
    u1 = x1 * z2z2 % PRIME
    u2 = x2 * z1z1 % PRIME
    s1 = y1 * z2 * z2z2 % PRIME
    s2 = y2 * z1 * z1z1 % PRIME
    if u1 == u2:
        return _double(p) if s1 == s2 else _INFINITY
    h = (u2 - u1) % PRIME
    r = (s2 - s1) % PRIME
    hh = h * h % PRIME
    hhh = h * hh % PRIME
    v = u1 * hh % PRIME
    x3 = (r * r - hhh - 2 * v) % PRIME
    y3 = (r * (v - x3) - s1 * hhh) % PRIME
    z3 = h * z1 * z2 % PRIME
    return x3, y3, z3
