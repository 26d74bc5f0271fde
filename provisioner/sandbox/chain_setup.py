"""Puts the stand-in contracts on the sandbox's anvil, at the addresses dYdX's clients use on Sepolia.

Code goes in with ``anvil_setCode`` (no constructor runs), then the operator key sends the
one-time ``initialize`` and ``registerUserAdmin`` transactions. Installing is idempotent: it
runs on every ``provision sandbox up``, also against a chain restored from anvil's ``--state``
file, and only does what is missing. The exchange's ``initialize`` flag marks a finished
first install; dev accounts are funded only before it is set, so balances and registrations
made later are never reset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract, ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted
from web3.types import Nonce, RPCEndpoint, TxParams

from provisioner.errors import ProvisionerError
from provisioner.networks import SEPOLIA
from provisioner.sandbox.dev_accounts import (
    DEV_ACCOUNTS,
    SANDBOX_OPERATOR_ADDRESS,
    SANDBOX_OPERATOR_KEY,
)

SANDBOX_CHAIN_ID = SEPOLIA.chain_id
EXCHANGE_ADDRESS = to_checksum_address(SEPOLIA.exchange_contract)
USDC_ADDRESS = to_checksum_address(SEPOLIA.usdc_contract)
MULTICALL3_ADDRESS = to_checksum_address("0xcA11bde05977b3631167028862bE2a173976CA11")
SYSTEM_ASSET_TYPE = SEPOLIA.collateral_asset_id
OPERATOR = to_checksum_address(SANDBOX_OPERATOR_ADDRESS)

ARTIFACTS_DIR = Path(__file__).resolve().parent / "contracts" / "artifacts"
PLACEMENTS: tuple[tuple[str, ChecksumAddress], ...] = (
    ("StarkPerpetualStandIn", EXCHANGE_ADDRESS),
    ("UsdcStandIn", USDC_ADDRESS),
    ("Multicall3", MULTICALL3_ADDRESS),
)

DEFAULT_USDC_PER_ACCOUNT = 1_000_000 * 10**6
ETH_TOP_UP_WEI = 10_000 * 10**18
ETH_MINIMUM_WEI = 10**18
RECEIPT_TIMEOUT_S = 30.0
RPC_TIMEOUT_S = 10.0


class ChainSetupError(ProvisionerError):
    pass


def install_sandbox_contracts(
    rpc_url: str, *, usdc_per_account: int = DEFAULT_USDC_PER_ACCOUNT
) -> None:
    """Install, initialize and fund the sandbox contracts on the anvil at ``rpc_url``, once."""
    if isinstance(usdc_per_account, bool) or not isinstance(usdc_per_account, int):
        raise TypeError("usdc_per_account is an int in USDC base units")
    if usdc_per_account < 0:
        raise ValueError("usdc_per_account must not be negative")
    w3 = connect(rpc_url)
    _require_sandbox_anvil(w3, rpc_url)
    _refuse_foreign_exchange(w3)
    for name, address in PLACEMENTS:
        _place_code(w3, address, deployed_bytecode(name))

    exchange = exchange_contract(w3)
    initialized, governor, token, asset_type = exchange.functions.standInConfig().call()
    if initialized:
        _check_config(governor, token, asset_type)
    else:
        _fund_dev_accounts(w3, usdc_per_account)
        _send_all(
            w3,
            [
                exchange.functions.initialize(
                    SANDBOX_OPERATOR_ADDRESS, USDC_ADDRESS, SYSTEM_ASSET_TYPE
                )
            ],
        )
    if not exchange.functions.isUserAdmin(SANDBOX_OPERATOR_ADDRESS).call():
        _send_all(w3, [exchange.functions.registerUserAdmin(SANDBOX_OPERATOR_ADDRESS)])


def connect(rpc_url: str) -> Web3:
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_S}))


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The committed build output of one contract (see contracts/build.js)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        artifact: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ChainSetupError(f"missing contract artifact {path} (run 'make contracts')") from exc
    return artifact


def deployed_bytecode(name: str) -> str:
    return str(load_artifact(name)["deployedBytecode"]).lower()


def exchange_contract(w3: Web3) -> Contract:
    return w3.eth.contract(
        address=EXCHANGE_ADDRESS, abi=load_artifact("StarkPerpetualStandIn")["abi"]
    )


def usdc_contract(w3: Web3) -> Contract:
    return w3.eth.contract(address=USDC_ADDRESS, abi=load_artifact("UsdcStandIn")["abi"])


def multicall3_contract(w3: Web3) -> Contract:
    return w3.eth.contract(address=MULTICALL3_ADDRESS, abi=load_artifact("Multicall3")["abi"])


def _rpc(w3: Web3, method: str, params: Sequence[Any]) -> Any:
    try:
        response = w3.provider.make_request(RPCEndpoint(method), list(params))
    except OSError as exc:  # requests' ConnectionError and timeouts are OSErrors
        raise ChainSetupError(f"cannot reach the Ethereum node: {exc}") from exc
    if "error" in response:
        raise ChainSetupError(f"{method} failed: {response['error']}")
    return response.get("result")


def _require_sandbox_anvil(w3: Web3, rpc_url: str) -> None:
    chain_id = int(_rpc(w3, "eth_chainId", []), 16)
    if chain_id != SANDBOX_CHAIN_ID:
        raise ChainSetupError(
            f"the node at {rpc_url} has chain id {chain_id}; the sandbox needs "
            f"{SANDBOX_CHAIN_ID} (Sepolia's id, the only one dydx3 2.1.0 knows besides mainnet): "
            f"start anvil with --chain-id {SANDBOX_CHAIN_ID}"
        )
    client = str(_rpc(w3, "web3_clientVersion", []))
    if not client.lower().startswith("anvil"):
        raise ChainSetupError(
            f"the node at {rpc_url} is {client!r}, not anvil; refusing to patch it"
        )


def _get_code(w3: Web3, address: str) -> str:
    return str(_rpc(w3, "eth_getCode", [address, "latest"])).lower()


def _refuse_foreign_exchange(w3: Web3) -> None:
    """An exchange address holding some other contract (a fork of real Sepolia?) is left alone."""
    code = _get_code(w3, EXCHANGE_ADDRESS)
    if code in ("0x", deployed_bytecode("StarkPerpetualStandIn")):
        return
    try:
        exchange_contract(w3).functions.standInConfig().call()
    except (ContractLogicError, ValueError) as exc:
        raise ChainSetupError(
            f"{EXCHANGE_ADDRESS} already holds a contract that is not the sandbox stand-in "
            "(a fork of the real Sepolia?); use a fresh anvil"
        ) from exc


def _place_code(w3: Web3, address: ChecksumAddress, runtime: str) -> None:
    """Sets the code if it differs; storage is kept (the stand-ins' layouts are append-only)."""
    if _get_code(w3, address) != runtime:
        _rpc(w3, "anvil_setCode", [address, runtime])


def _check_config(governor: str, token: str, asset_type: int) -> None:
    expected = (SANDBOX_OPERATOR_ADDRESS, USDC_ADDRESS, SYSTEM_ASSET_TYPE)
    actual = (to_checksum_address(governor), to_checksum_address(token), asset_type)
    if actual != expected:
        raise ChainSetupError(
            f"the exchange stand-in at {EXCHANGE_ADDRESS} was initialized with "
            f"governor/token/assetType {actual}, expected {expected}; use a fresh anvil"
        )


def _fund_dev_accounts(w3: Web3, usdc_per_account: int) -> None:
    """setBalance (not mint) so that an install interrupted before `initialize` can rerun safely."""
    usdc = usdc_contract(w3)
    for account in DEV_ACCOUNTS:
        _ensure_eth(w3, account.address)
    _send_all(w3, [usdc.functions.setBalance(a.address, usdc_per_account) for a in DEV_ACCOUNTS])


def _ensure_eth(w3: Web3, address: str) -> None:
    if w3.eth.get_balance(to_checksum_address(address)) < ETH_MINIMUM_WEI:
        _rpc(w3, "anvil_setBalance", [address, hex(ETH_TOP_UP_WEI)])


def _send_all(w3: Web3, calls: Sequence[ContractFunction]) -> None:
    """Signs the calls with the operator key, sends them back to back, then waits for each receipt.

    Waiting (instead of assuming automine) keeps this working on an anvil with --block-time.
    """
    _ensure_eth(w3, OPERATOR)
    nonce = w3.eth.get_transaction_count(OPERATOR, "pending")
    gas_price = w3.eth.gas_price
    hashes: list[tuple[str, HexBytes]] = []
    for offset, call in enumerate(calls):
        params: TxParams = {
            "from": OPERATOR,
            "nonce": Nonce(nonce + offset),
            "gasPrice": gas_price,
            "chainId": SANDBOX_CHAIN_ID,
        }
        try:
            tx = call.build_transaction(params)
        except ContractLogicError as exc:
            raise ChainSetupError(f"sandbox setup call {call.fn_name} would revert: {exc}") from exc
        signed = w3.eth.account.sign_transaction(tx, SANDBOX_OPERATOR_KEY)
        hashes.append((call.fn_name, w3.eth.send_raw_transaction(signed.rawTransaction)))
    for fn_name, tx_hash in hashes:
        try:
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        except TimeExhausted as exc:
            raise ChainSetupError(
                f"sandbox setup transaction {fn_name} was not mined within {RECEIPT_TIMEOUT_S:.0f}s "
                "(is anvil started with --no-mining?)"
            ) from exc
        if receipt["status"] != 1:
            raise ChainSetupError(f"sandbox setup transaction {fn_name} reverted: {tx_hash.hex()}")
