"""The one documented fix for importing dydx-v3-python 2.1.0 on Python 3.11+ (provisioner/compat.py)."""

import provisioner  # noqa: F401,I001  (applies the Python 3.11 import fix first)
from dydx3 import Client, constants

# Reference test vector (shared/reference/dydx-v3-api.md §3): Sepolia column.
ETH_KEY = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"


def _client() -> Client:
    return Client(
        host="http://127.0.0.1:1",
        network_id=constants.NETWORK_ID_SEPOLIA,
        eth_private_key=ETH_KEY,
    )


def test_dydx3_imports_and_derives_the_reference_stark_key() -> None:
    keys = _client().onboarding.derive_stark_key(ethereum_address=ADDRESS)
    assert (
        int(keys["private_key"], 16)
        == 0x2D21C094FEDEA3E72BEF27FBCDCEAAFD34E88FC4B7586859E26E98B21E63A60
    )
    assert (
        int(keys["public_key"], 16)
        == 0x15E2E074A7AC9E78EDB2EE9F11A0C0C0A080C79758AB81616EEA9C032C75265
    )
    assert (
        int(keys["public_key_y_coordinate"], 16)
        == 0x360408546B64238F80D7A8A336D7304D75F122A7E5BB22CBB7A14F550EAC5A8
    )


def test_default_api_key_matches_reference_vector() -> None:
    creds = _client().onboarding.recover_default_api_key_credentials(ethereum_address=ADDRESS)
    assert creds == {
        "key": "30cb6046-8f4a-5677-a19c-a494ccb7c7e5",
        "secret": "4Yd_6JtH_-I2taoNQKAhkCifnVHQ2Unue88sIeuc",
        "passphrase": "Db1GQK5KpI_qeddgjF66",
    }
