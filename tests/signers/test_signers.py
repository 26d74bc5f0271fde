"""Local, keystore and remote signers, and the factory's checks. No sandbox needed."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dydx3.eth_signing.onboarding_action import SignOnboardingAction
from dydx3.eth_signing.signers import SignWithKey
from eth_account import Account

from provisioner.manifest.model import KeystoreSigner, PrivateKeySigner, RemoteSigner, SecretRef
from provisioner.redact import Redactor
from provisioner.signers.base import SignerError
from provisioner.signers.factory import make_signer
from provisioner.signers.keystore import decrypt_keystore, keystore_signer
from provisioner.signers.local import LocalKeySigner
from provisioner.signers.remote import RemoteSigner as RemoteJsonRpcSigner

REFERENCE_KEY = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
REFERENCE_ADDRESS = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"
SEPOLIA = 11155111
# dydx3's typed signature of "dYdX Onboarding" on Sepolia for REFERENCE_KEY: r ‖ s ‖ v ‖ type byte 00
DYDX3_ONBOARDING_SIGNATURE = (
    "0xff5aa99adb410383b8cf699690443a10a90c0e695f577c4b530fc07b1add6bd1"
    "1aa28efeb9976676ad5e68fbb5dd05e86873f1425b7ba0e91061d628d8183a921c00"
)
OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
OTHER_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
EXCHANGE = "0x3D05aaCd0fED84f65dE0D91e4621298E702911E2"


def onboarding_typed_data() -> dict[str, Any]:
    action = SignOnboardingAction(SignWithKey(REFERENCE_KEY), SEPOLIA)
    return action.get_eip712_message(action="dYdX Onboarding")


def a_transaction(**overrides: Any) -> dict[str, Any]:
    tx = {
        "to": EXCHANGE,
        "data": "0x1234",
        "value": 0,
        "nonce": 7,
        "gas": 60_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "chainId": SEPOLIA,
    }
    return {**tx, **overrides}


class FakeResolver:
    def __init__(self, values: dict[str, str], redactor: Redactor) -> None:
        self.values = values
        self.redactor = redactor
        self.asked: list[SecretRef] = []

    def resolve(self, ref: SecretRef) -> str:
        self.asked.append(ref)
        value = self.values[ref.target]
        self.redactor.register(value)
        return value


# -- LocalKeySigner ---------------------------------------------------------------------------


def test_typed_data_signature_equals_dydx3_onboarding_signature() -> None:
    signer = LocalKeySigner(REFERENCE_KEY)
    signature = signer.sign_typed_data(onboarding_typed_data())
    assert signature == DYDX3_ONBOARDING_SIGNATURE[:132]
    dydx3_own = SignOnboardingAction(SignWithKey(REFERENCE_KEY), SEPOLIA).sign(
        REFERENCE_ADDRESS, action="dYdX Onboarding"
    )
    assert dydx3_own == DYDX3_ONBOARDING_SIGNATURE
    assert int(signature[-2:], 16) in (27, 28)


def test_local_signer_is_deterministic_and_knows_its_address() -> None:
    signer = LocalKeySigner(REFERENCE_KEY)
    assert signer.address == REFERENCE_ADDRESS
    assert signer.can_sign_raw_transactions
    assert signer.sign_typed_data(onboarding_typed_data()) == signer.sign_typed_data(
        onboarding_typed_data()
    )
    assert REFERENCE_KEY[2:] not in repr(signer)


@pytest.mark.parametrize(
    "tx",
    [a_transaction(), a_transaction(maxFeePerGas=None, maxPriorityFeePerGas=None, gasPrice=10**9)],
)
def test_sign_transaction_gives_raw_bytes_from_the_signer(tx: dict[str, Any]) -> None:
    tx = {k: v for k, v in tx.items() if v is not None}
    raw = LocalKeySigner(REFERENCE_KEY).sign_transaction({**tx, "from": REFERENCE_ADDRESS})
    assert isinstance(raw, bytes)
    assert Account.recover_transaction(raw) == REFERENCE_ADDRESS


def test_sign_transaction_refuses_another_sender_and_missing_fields() -> None:
    signer = LocalKeySigner(REFERENCE_KEY)
    with pytest.raises(SignerError, match="signs for"):
        signer.sign_transaction(a_transaction(**{"from": OTHER_ADDRESS}))
    with pytest.raises(SignerError, match="nonce"):
        signer.sign_transaction({k: v for k, v in a_transaction().items() if k != "nonce"})


def test_local_signer_does_not_broadcast() -> None:
    with pytest.raises(SignerError, match="does not broadcast"):
        LocalKeySigner(REFERENCE_KEY).send_transaction(a_transaction())


@pytest.mark.parametrize("bad", ["0x1234", "not hex at all", REFERENCE_KEY + "00"])
def test_bad_private_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(SignerError) as caught:
        LocalKeySigner(bad)
    assert bad not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- keystore ---------------------------------------------------------------------------------


@pytest.fixture
def keystore_file(tmp_path: Path) -> Path:
    path = tmp_path / "alpha.json"
    # pbkdf2 with few iterations keeps the test fast; real keystores use scrypt
    path.write_text(
        json.dumps(Account.encrypt(REFERENCE_KEY, "correct horse", kdf="pbkdf2", iterations=1000))
    )
    return path


def test_keystore_round_trip(keystore_file: Path) -> None:
    assert decrypt_keystore(keystore_file, "correct horse") == REFERENCE_KEY
    assert keystore_signer(keystore_file, "correct horse").address == REFERENCE_ADDRESS


def test_keystore_wrong_password_names_the_file_not_the_password(keystore_file: Path) -> None:
    with pytest.raises(SignerError) as caught:
        keystore_signer(keystore_file, "wrong battery")
    message = str(caught.value)
    assert str(keystore_file) in message and "wrong password" in message
    assert "wrong battery" not in message


def test_keystore_missing_or_not_a_keystore(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match="cannot read"):
        decrypt_keystore(tmp_path / "absent.json", "pw")
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    with pytest.raises(SignerError, match="not an Ethereum V3 keystore"):
        decrypt_keystore(junk, "pw")


# -- factory ----------------------------------------------------------------------------------


def test_factory_private_key_signer_registers_the_key() -> None:
    redactor = Redactor()
    resolver = FakeResolver({"MM_ALPHA_KEY": REFERENCE_KEY}, redactor)
    signer = make_signer(
        PrivateKeySigner(SecretRef("env", "MM_ALPHA_KEY")),
        REFERENCE_ADDRESS.lower(),
        resolver,
        account="mm-alpha",
    )
    assert isinstance(signer, LocalKeySigner)
    assert signer.address == REFERENCE_ADDRESS
    assert redactor.redact(f"key={REFERENCE_KEY}") == "key=***"


def test_factory_refuses_a_signer_for_another_address() -> None:
    resolver = FakeResolver({"MM_ALPHA_KEY": OTHER_KEY}, Redactor())
    with pytest.raises(SignerError) as caught:
        make_signer(
            PrivateKeySigner(SecretRef("env", "MM_ALPHA_KEY")),
            REFERENCE_ADDRESS,
            resolver,
            account="mm-alpha",
        )
    assert (
        str(caught.value)
        == f"signer for mm-alpha signs for {OTHER_ADDRESS}, manifest says {REFERENCE_ADDRESS}"
    )
    assert OTHER_KEY[2:] not in str(caught.value)


def test_factory_keystore_signer_registers_password_and_decrypted_key(keystore_file: Path) -> None:
    redactor = Redactor()
    resolver = FakeResolver({"KS_PASSWORD": "correct horse"}, redactor)
    spec = KeystoreSigner(path=str(keystore_file), password=SecretRef("env", "KS_PASSWORD"))
    signer = make_signer(spec, REFERENCE_ADDRESS, resolver, account="mm-alpha", redactor=redactor)
    assert signer.address == REFERENCE_ADDRESS
    assert redactor.redact(f"{REFERENCE_KEY} correct horse") == "*** ***"


def test_factory_keystore_for_another_address(keystore_file: Path) -> None:
    resolver = FakeResolver({"KS_PASSWORD": "correct horse"}, Redactor())
    spec = KeystoreSigner(path=str(keystore_file), password=SecretRef("env", "KS_PASSWORD"))
    with pytest.raises(
        SignerError, match=f"signer for mm-beta signs for {REFERENCE_ADDRESS}, manifest says"
    ):
        make_signer(spec, OTHER_ADDRESS, resolver, account="mm-beta")


# -- remote signer against a scripted JSON-RPC endpoint ---------------------------------------


class ScriptedSigner(BaseHTTPRequestHandler):
    """Answers like a remote signer for REFERENCE_KEY; ``server.behaviour`` tweaks the answers."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        behaviour: dict[str, Any] = self.server.behaviour  # type: ignore[attr-defined]
        self.server.seen.append(request["method"])  # type: ignore[attr-defined]
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
        method = request["method"]
        if method == "eth_accounts":
            body["result"] = [REFERENCE_ADDRESS.lower()]
        elif method == "eth_signTypedData_v4":
            typed = json.loads(request["params"][1])
            signature = LocalKeySigner(behaviour.get("key", REFERENCE_KEY)).sign_typed_data(typed)
            if behaviour.get("v01"):
                signature = signature[:-2] + f"{int(signature[-2:], 16) - 27:02x}"
            body["result"] = signature
        elif method == "eth_signTransaction" and behaviour.get("sign_transaction", True):
            if not request["params"]:
                body["error"] = {"code": -32602, "message": "missing value for required argument 0"}
            else:
                tx = {
                    k: (int(v, 16) if k not in ("from", "to", "data") else v)
                    for k, v in request["params"][0].items()
                }
                body["result"] = {
                    "raw": "0x" + LocalKeySigner(REFERENCE_KEY).sign_transaction(tx).hex(),
                    "tx": {},
                }
        else:
            body["error"] = {
                "code": -32601,
                "message": f"the method {method} does not exist/is not available",
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedSigner)
    server.behaviour = {}  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://user:s3cret-token@127.0.0.1:{server.server_address[1]}/rpc?apikey=abcdef"


def test_remote_typed_data_normalises_v_and_checks_the_signer(
    scripted: ThreadingHTTPServer,
) -> None:
    remote = RemoteJsonRpcSigner(url_of(scripted), REFERENCE_ADDRESS, 5)
    expected = DYDX3_ONBOARDING_SIGNATURE[:132]
    assert remote.sign_typed_data(onboarding_typed_data()) == expected
    scripted.behaviour["v01"] = True  # type: ignore[attr-defined]
    assert remote.sign_typed_data(onboarding_typed_data()) == expected
    scripted.behaviour["key"] = OTHER_KEY  # type: ignore[attr-defined]
    with pytest.raises(SignerError, match="not from"):
        remote.sign_typed_data(onboarding_typed_data())


def test_remote_sign_transaction_probes_once(scripted: ThreadingHTTPServer) -> None:
    remote = RemoteJsonRpcSigner(url_of(scripted), REFERENCE_ADDRESS, 5)
    assert remote.can_sign_raw_transactions
    assert remote.can_sign_raw_transactions
    raw = remote.sign_transaction(a_transaction())
    assert Account.recover_transaction(raw) == REFERENCE_ADDRESS
    assert scripted.seen.count("eth_signTransaction") == 2  # type: ignore[attr-defined]


def test_remote_without_sign_transaction(scripted: ThreadingHTTPServer) -> None:
    scripted.behaviour["sign_transaction"] = False  # type: ignore[attr-defined]
    remote = RemoteJsonRpcSigner(url_of(scripted), REFERENCE_ADDRESS, 5)
    assert not remote.can_sign_raw_transactions
    with pytest.raises(SignerError, match="use send_transaction"):
        remote.sign_transaction(a_transaction())
    with pytest.raises(SignerError, match="refused eth_sendTransaction") as caught:
        remote.send_transaction(a_transaction())
    assert "s3cret" not in str(caught.value) and "apikey" not in str(caught.value)


def test_factory_remote_checks_eth_accounts(scripted: ThreadingHTTPServer) -> None:
    resolver = FakeResolver({}, Redactor())
    spec = RemoteSigner(url=url_of(scripted), timeout_seconds=5)
    signer = make_signer(spec, REFERENCE_ADDRESS, resolver, account="mm-alpha")
    assert signer.address == REFERENCE_ADDRESS
    with pytest.raises(SignerError, match=f"does not sign for {OTHER_ADDRESS}") as caught:
        make_signer(spec, OTHER_ADDRESS, resolver, account="mm-beta")
    assert "s3cret" not in str(caught.value)
    assert resolver.asked == []


def test_remote_unreachable_is_a_signer_error() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), ScriptedSigner) as closed:
        port = closed.server_address[1]
    remote = RemoteJsonRpcSigner(f"http://127.0.0.1:{port}", REFERENCE_ADDRESS, 2)
    with pytest.raises(SignerError, match="unreachable"):
        remote.sign_typed_data(onboarding_typed_data())


def test_remote_slow_signer_times_out_per_call() -> None:
    class Silent(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            threading.Event().wait(2)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = RemoteJsonRpcSigner(
            f"http://127.0.0.1:{server.server_address[1]}", REFERENCE_ADDRESS, 0.3
        )
        with pytest.raises(
            SignerError, match=r"did not answer eth_sendTransaction within 0.3s; it may still"
        ):
            remote.send_transaction(a_transaction())
    finally:
        server.shutdown()
        server.server_close()
