"""NonceManager: distinct consecutive nonces under concurrency, starting from the node's pending count."""

import provisioner  # noqa: F401,I001  (the dydx3/web3 import fix must run first)

from concurrent.futures import ThreadPoolExecutor

import pytest

from provisioner.clients.chain import ChainClient
from provisioner.sandbox.dev_accounts import DEV_ACCOUNTS

pytestmark = pytest.mark.sandbox

ADDRESS = DEV_ACCOUNTS[6].address


def test_five_threads_get_distinct_consecutive_nonces(chain: ChainClient) -> None:
    start = chain.pending_count(ADDRESS)
    with ThreadPoolExecutor(max_workers=5) as pool:
        nonces = list(pool.map(lambda _: [chain.nonces.next(ADDRESS) for _ in range(20)], range(5)))
    flat = sorted(n for per_thread in nonces for n in per_thread)
    assert flat == list(range(start, start + 100))
    assert all(per_thread == sorted(per_thread) for per_thread in nonces)
    assert chain.stats.rpc_calls == 2  # one pending count for the test, one for the manager


def test_resync_takes_the_node_count_again(chain: ChainClient) -> None:
    start = chain.pending_count(ADDRESS)
    assert [chain.nonces.next(ADDRESS) for _ in range(3)] == [start, start + 1, start + 2]
    chain.nonces.resync(ADDRESS)  # nothing was sent: the node still says `start`
    assert chain.nonces.next(ADDRESS.lower()) == start
