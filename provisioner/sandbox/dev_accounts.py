"""Well-known keys of the local sandbox. Public on purpose: never use them on a real network.

``DEV_ACCOUNTS`` are anvil's ten default accounts (mnemonic ``DEV_MNEMONIC``, path
m/44'/60'/0'/0/i). The sandbox operator is a separate key, keccak256 of
``OPERATOR_KEY_SEED``, registered as user admin in the stand-in exchange: the
dYdX emulator signs ``GET /v3/registration`` answers with it.
"""

from __future__ import annotations

from typing import NamedTuple

from eth_keys import keys
from eth_utils import keccak, to_checksum_address

DEV_MNEMONIC = "test test test test test test test test test test test junk"
OPERATOR_KEY_SEED = b"dydx-provisioner sandbox operator"


class DevAccount(NamedTuple):
    address: str
    private_key: str


DEV_ACCOUNTS: tuple[DevAccount, ...] = (
    DevAccount(
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    ),
    DevAccount(
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    ),
    DevAccount(
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    ),
    DevAccount(
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    ),
    DevAccount(
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    ),
    DevAccount(
        "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    ),
    DevAccount(
        "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
        "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    ),
    DevAccount(
        "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    ),
    DevAccount(
        "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
        "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    ),
    DevAccount(
        "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
        "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    ),
)

SANDBOX_OPERATOR_KEY = "0x781c6fb569ac5c47a781a9c79019e5ab33aebe0fe8759942002f3c0bffff3aff"
SANDBOX_OPERATOR_ADDRESS = "0x6d32849e93d7d14cA9c3D442F7bcfB4Ce7E8fF0E"

REGISTRATION_PREFIX = b"UserRegistration:"
_STARK_KEY_BOUND = 2**256


def address_of(private_key: str) -> str:
    """Checksummed address of a 0x-prefixed 32-byte hex private key."""
    return str(keys.PrivateKey(_key_bytes(private_key)).public_key.to_checksum_address())


def registration_digest(eth_address: str, stark_key: int) -> bytes:
    """keccak256("UserRegistration:" ‖ address (20 bytes) ‖ starkKey (32 bytes)), no message prefix."""
    return keccak(REGISTRATION_PREFIX + _address_bytes(eth_address) + _stark_key_bytes(stark_key))


def sign_registration(
    eth_address: str, stark_key: int, *, admin_key: str = SANDBOX_OPERATOR_KEY
) -> str:
    """A user admin's registerUser signature: "0x" + r ‖ s ‖ v (v is 27 or 28), lowercase hex."""
    signature = keys.PrivateKey(_key_bytes(admin_key)).sign_msg_hash(
        registration_digest(eth_address, stark_key)
    )
    r, s, v = signature.r, signature.s, signature.v + 27
    return "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + f"{v:02x}"


def _key_bytes(private_key: str) -> bytes:
    raw = _hex_bytes(private_key, "private key")
    if len(raw) != 32:
        raise ValueError("a private key is 32 bytes of hex")
    return raw


def _address_bytes(eth_address: str) -> bytes:
    raw = _hex_bytes(eth_address, "address")
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte address: {eth_address!r}")
    digits = eth_address[2:]
    mixed_case = digits not in (digits.lower(), digits.upper())
    if mixed_case and to_checksum_address(eth_address) != eth_address:
        raise ValueError(f"bad address checksum: {eth_address!r}")
    return raw


def _stark_key_bytes(stark_key: int) -> bytes:
    if isinstance(stark_key, bool) or not isinstance(stark_key, int):
        raise TypeError("stark_key is an int")
    if not 0 < stark_key < _STARK_KEY_BOUND:
        raise ValueError("stark_key out of range")
    return stark_key.to_bytes(32, "big")


def _hex_bytes(value: str, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise ValueError(f"{what} must be 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ValueError(f"{what} is not hex: {value!r}") from exc
