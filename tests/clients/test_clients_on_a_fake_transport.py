"""Every client sends through the transport it is given: what each sends, and what it makes of
the answers and failures, with the recording fake of tests/support/transport.py."""

from __future__ import annotations

from typing import Any

import pytest
from support.manifest import ALPHA, load, one_account
from support.transport import FakeTransport, Sent, answer

from provisioner.clients.chain import ChainClient, ChainError
from provisioner.clients.chain.abi import LOG_DEPOSIT_TOPIC
from provisioner.clients.dydx import DydxClient, DydxError
from provisioner.clients.ratelimit import RateLimiter
from provisioner.clients.retry import RetryPolicy
from provisioner.clients.transport import TransportError
from provisioner.clients.vault import VaultClient, VaultError
from provisioner.connections import connect
from provisioner.manifest.model import NetworkSpec, SecretRef, VaultAuth, VaultSpec
from provisioner.networks import SEPOLIA
from provisioner.redact import Redactor
from provisioner.secrets import SecretResolver
from provisioner.signers.remote import RemoteSigner

NO_WAIT = RetryPolicy(max_attempts=3, base_delay=0, jitter=0, sleep=lambda _s: None)
TOKEN = "canary-vault-token-3f9a"


def _rpc_result(sent: Sent, result: Any) -> Any:
    return answer(200, {"jsonrpc": "2.0", "id": sent.json()["id"], "result": result})


def _vault_and_chain(chain_id: int) -> Any:
    def respond(sent: Sent) -> Any:
        if sent.url.endswith("/v1/auth/token/lookup-self"):
            return answer(200, {"data": {"ttl": 0, "renewable": False}})
        if sent.url.endswith("/v1/secret/data/moved"):
            return answer(307, b"", {"Location": "http://127.0.0.2:8200/v1/secret/data/moved"})
        if sent.method == "POST" and sent.json().get("method") == "eth_chainId":
            return _rpc_result(sent, hex(chain_id))
        if "/v3/users/exists" in sent.url:
            return answer(200, {"exists": True})
        return answer(404, {"errors": ["no handler"]})

    return respond


def test_connect_gives_every_client_the_one_transport() -> None:
    manifest = load(one_account())
    fake = FakeTransport(_vault_and_chain(manifest.network.chain_id))
    conn = connect(manifest, env={"VAULT_TOKEN": TOKEN}, transport=fake)
    assert conn.transport is fake
    assert conn.dydx.user_exists(ALPHA)
    hosts = [sent.url.split("/")[2] for sent in fake.sent]
    assert hosts == ["127.0.0.1:8200", "127.0.0.1:8545", "127.0.0.1:8080"]  # Vault, chain, dYdX
    assert fake.sent[0].headers["X-Vault-Token"] == TOKEN
    assert "X-Vault-Token" not in fake.sent[1].headers | fake.sent[2].headers


def test_vault_refuses_a_redirect_the_transport_did_not_follow() -> None:
    fake = FakeTransport(_vault_and_chain(1))
    redactor = Redactor()
    spec = VaultSpec("http://127.0.0.1:8200", VaultAuth("token", token=SecretRef("env", "T")))
    vault = VaultClient.connect(
        spec, SecretResolver(redactor, {"T": TOKEN}), redactor, transport=fake
    )
    with pytest.raises(VaultError, match="redirect to another address, which is not followed"):
        vault.read("moved")
    assert vault.stats == {"reads": 1, "writes": 0, "auth": 1}


def test_dydx_retries_what_never_left_and_names_what_may_have() -> None:
    refused = TransportError("connection refused", maybe_sent=False)
    answers: list[Any] = [refused, answer(200, {"exists": False})]
    fake = FakeTransport(lambda _sent: answers.pop(0))
    dydx = DydxClient(
        "http://127.0.0.1:8080", 1, redactor=Redactor(), retry=NO_WAIT,
        limiter=RateLimiter(), transport=fake,
    )  # fmt: skip
    assert dydx.user_exists(ALPHA) is False
    assert [s.url for s in fake.sent] == [
        f"http://127.0.0.1:8080/v3/users/exists?ethereumAddress={ALPHA}"
    ] * 2
    lost = FakeTransport(lambda _sent: TransportError("no answer in time", maybe_sent=True))
    dydx = DydxClient(
        "http://127.0.0.1:8080", 1, redactor=Redactor(), retry=NO_WAIT,
        limiter=RateLimiter(), transport=lost,
    )  # fmt: skip
    with pytest.raises(DydxError) as caught:
        dydx.user_exists(ALPHA)
    assert caught.value.ambiguous and len(lost.sent) == 3  # a GET: idempotent, retried


def test_chain_rpc_batches_through_the_transport() -> None:
    def respond(sent: Sent) -> Any:
        calls = sent.json()
        return answer(200, [{"jsonrpc": "2.0", "id": c["id"], "result": "0x7"} for c in calls])

    fake = FakeTransport(respond)
    chain = ChainClient("http://127.0.0.1:8545", _network(), transport=fake, retry=NO_WAIT)
    assert chain.transaction_counts(ALPHA) == (7, 7)
    assert (
        len(fake.sent) == 1
        and [c["method"] for c in fake.sent[0].json()] == ["eth_getTransactionCount"] * 2
    )
    down = FakeTransport(lambda _sent: TransportError("connection refused", maybe_sent=False))
    chain = ChainClient("http://127.0.0.1:8545/k3y", _network(), transport=down, retry=NO_WAIT)
    with pytest.raises(ChainError, match=r"cannot reach .* \(connection refused\)") as caught:
        chain.chain_id()
    assert "k3y" not in str(caught.value) and len(down.sent) == 3


BUILD_ANSWERS: dict[str, Any] = {  # what a node answers the build batch of a transaction
    "eth_estimateGas": "0x5208",
    "eth_getBlockByNumber": {"baseFeePerGas": "0x1"},
    "eth_maxPriorityFeePerGas": "0x1",
    "eth_gasPrice": "0x2",
    "eth_chainId": hex(SEPOLIA.chain_id),
}


def test_a_senders_first_transaction_asks_its_nonce_in_the_build_batch() -> None:
    """One round trip builds a sender's first transaction (the estimate, fees and its nonce);
    the next ones count the nonce up here and ask the node nothing more."""
    results = {**BUILD_ANSWERS, "eth_getTransactionCount": "0x7"}

    def respond(sent: Sent) -> Any:
        calls = sent.json()
        calls = calls if isinstance(calls, list) else [calls]
        return answer(
            200, [{"jsonrpc": "2.0", "id": c["id"], "result": results[c["method"]]} for c in calls]
        )

    fake = FakeTransport(respond)
    chain = ChainClient("http://127.0.0.1:8545", _network(), transport=fake, retry=NO_WAIT)
    first = chain.build_approve(ALPHA, 5)
    second = chain.build_approve(ALPHA, 6)
    assert (first["nonce"], second["nonce"]) == (7, 8)
    methods = [[c["method"] for c in s.json()] for s in fake.sent]
    assert len(methods) == 2
    assert methods[0].count("eth_getTransactionCount") == 1
    assert "eth_getTransactionCount" not in methods[1]


def _log_deposit(block: int, stark_key: int, vault_id: int, quantized: int) -> dict[str, Any]:
    words = [0, stark_key, vault_id, SEPOLIA.collateral_asset_id, quantized, quantized]
    return {
        "address": SEPOLIA.exchange_contract,
        "topics": [LOG_DEPOSIT_TOPIC],
        "data": "0x" + b"".join(w.to_bytes(32, "big") for w in words).hex(),
        "blockNumber": hex(block),
        "transactionHash": "0x" + "ab" * 32,
    }


def _split_backends(
    heads: dict[str, int], events: list[dict[str, Any]], null_logs: bool = False
) -> Any:
    """A provider whose head and logs come from different backends: eth_blockNumber from one
    at ``heads["head"]``, eth_getLogs from one whose index reaches ``heads["logs"]`` only (it
    refuses a range past it, as nodes do; "latest" means its own head)."""

    def respond(sent: Sent) -> Any:
        calls = sent.json()
        calls = calls if isinstance(calls, list) else [calls]
        out: list[dict[str, Any]] = []
        for c in calls:
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": c["id"]}
            if c["method"] == "eth_blockNumber":
                reply["result"] = hex(heads["head"])
            else:
                f = c["params"][0]
                last = heads["logs"] if f["toBlock"] == "latest" else int(f["toBlock"], 16)
                if last > heads["logs"]:
                    reply["error"] = {"code": -32000, "message": "block range extends beyond current head block"}  # fmt: skip
                elif null_logs:
                    reply["result"] = None
                else:
                    first = int(f["fromBlock"], 16)
                    reply["result"] = [
                        e for e in events if first <= int(e["blockNumber"], 16) <= last
                    ]
            out.append(reply)
        return answer(200, out)

    return respond


def test_a_deposit_refresh_never_settles_blocks_its_logs_did_not_cover() -> None:
    """Review of #21: a refresh asked the logs up to "latest" beside the head; a provider
    whose log index lags its head then answered fewer blocks than the head said, and blocks
    never read were marked settled: a deposit mined there was never counted, and the next
    deposit would pay it twice. The refresh must fail loudly or count it."""
    heads = {"head": 1000, "logs": 1000}
    mined = [_log_deposit(1120, 5, 7, 1_000_000)]
    fake = FakeTransport(_split_backends(heads, mined))
    chain = ChainClient("http://127.0.0.1:8545", _network(), transport=fake, retry=NO_WAIT)
    assert chain.deposits() == {}
    heads.update(head=1200, logs=1100)  # the deposit at 1120 is mined; the log index lags
    with pytest.raises(ChainError, match="beyond current head"):
        chain.deposits(refresh=True)
    heads.update(head=1300, logs=1300)  # caught up: the deposit is counted
    assert chain.deposits(refresh=True) == {(5, 7): 1_000_000}


def test_a_null_logs_answer_is_an_error_not_no_deposits() -> None:
    fake = FakeTransport(_split_backends({"head": 10, "logs": 10}, [], null_logs=True))
    chain = ChainClient("http://127.0.0.1:8545", _network(), transport=fake, retry=NO_WAIT)
    with pytest.raises(ChainError, match="not a list"):
        chain.deposits()


def test_remote_signer_sends_through_the_transport_with_its_own_timeouts() -> None:
    fake = FakeTransport(lambda sent: _rpc_result(sent, [ALPHA]))
    signer = RemoteSigner("http://127.0.0.1:8550", ALPHA, 7.5, transport=fake)
    signer.check_address()
    assert fake.sent[0].json()["method"] == "eth_accounts" and fake.sent[0].timeout == 7.5


def _network() -> NetworkSpec:
    return NetworkSpec(
        name="sepolia",
        chain_id=SEPOLIA.chain_id,
        rpc_url="http://127.0.0.1:8545",
        api_url=SEPOLIA.api_url,
        exchange_contract=SEPOLIA.exchange_contract,
        usdc_contract=SEPOLIA.usdc_contract,
        collateral_asset_id=SEPOLIA.collateral_asset_id,
    )


def test_a_pending_count_read_before_a_resync_is_not_used_after_it() -> None:
    """Review of #21: a count read in one thread's build batch, while another thread took
    nonces, failed a send and resynced, would hand out a nonce already used; the manager asks
    the node again instead."""
    from provisioner.clients.chain.transactions import NonceManager

    node = {"pending": 6}
    nonces = NonceManager(lambda _address: node["pending"])
    ticket = nonces.ticket(ALPHA)  # thread 2 is about to read the count in its batch: 5
    assert ticket is not None
    assert nonces.next(ALPHA, 5, nonces.ticket(ALPHA)) == 5  # thread 1 sends 5 (mined: 6)
    assert nonces.next(ALPHA) == 6  # thread 1 takes 6, its send fails
    nonces.resync(ALPHA)
    assert nonces.next(ALPHA, 5, ticket) == 6  # thread 2's stale 5 is not used
    assert nonces.ticket(ALPHA) is None  # counted here now: no count in the next batch


def test_a_build_whose_count_fails_asks_the_node_for_the_nonce() -> None:
    asked: list[str] = []

    def respond(sent: Sent) -> Any:
        calls = sent.json()
        calls = calls if isinstance(calls, list) else [calls]
        results = BUILD_ANSWERS
        out = []
        for c in calls:
            asked.append(c["method"])
            if c["method"] == "eth_getTransactionCount":
                if len(calls) > 1:  # in the build batch: refused
                    out.append({"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32000, "message": "busy"}})  # fmt: skip
                else:
                    out.append({"jsonrpc": "2.0", "id": c["id"], "result": "0x9"})
            else:
                out.append({"jsonrpc": "2.0", "id": c["id"], "result": results[c["method"]]})
        return answer(200, out if isinstance(sent.json(), list) else out[0])

    fake = FakeTransport(respond)
    chain = ChainClient("http://127.0.0.1:8545", _network(), transport=fake, retry=NO_WAIT)
    assert chain.build_approve(ALPHA, 5)["nonce"] == 9
    assert asked.count("eth_getTransactionCount") == 2
