"""`provision journal resolve`: a person settles a journal entry the tool must not settle alone.

A request a remote signer never answered (it may still send it, with this nonce or another),
or a transaction a signer sent that differs from what it was asked, blocks its sender: no new
transaction goes out from that address until the entry's nonce is used on chain, or someone who
knows what the signer did (refused it, cancelled it, it was reviewed) resolves it here. The entry
is printed before it is removed; nothing is sent. It holds the account's lock and its address's
meanwhile, as apply does, so it never removes an entry a running apply is settling or about to act
on (under this name or, from another manifest sharing the state_path, another).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from provisioner.apply.lease import DEFAULT_TTL_SECONDS, Lease
from provisioner.apply.lock import AccountLocks, sender_locks
from provisioner.cli.runtime import session_from_args
from provisioner.errors import ProvisionerError
from provisioner.journal import PENDING, Journal, tx_status
from provisioner.session import Session


def run(args: argparse.Namespace) -> int:
    args.shard = None
    r = session_from_args(args, [args.account])
    spec = r.manifest.account(args.account)
    with _account_lock(r, spec.name):
        return _resolve(r, spec.name, args.nonce)


def _resolve(r: Session, account: str, nonce: int) -> int:
    spec = r.manifest.account(account)
    network = r.manifest.network
    journal = Journal(r.conn.vault, r.manifest.vault.state_path)
    entries = [
        tx
        for tx in journal.transactions(network.chain_id, spec.address, spec.name)
        if tx.nonce == nonce
    ]
    if not entries:
        raise ProvisionerError(
            f"no journaled transaction with nonce {nonce} for {spec.name} ({spec.address})"
        )
    for tx in entries:
        status = tx_status(r.conn.chain, tx, network.confirmations)
        if status == PENDING:
            raise ProvisionerError(
                f"journaled {tx.intent} with nonce {tx.nonce} is pending at the node: it may still "
                "be mined, so it is not resolved by hand; run apply, which waits for it"
            )
        shown = tx.tx_hash or "no hash (the signer never answered)"
        problem = f"; held because: {tx.problem}" if tx.problem else ""
        print(
            r.redactor.redact(
                f"resolved by hand: journaled {tx.intent} of {tx.account} with nonce {tx.nonce}, "
                f"{shown}, amount {tx.amount}, recorded at {tx.recorded_at or 'unknown'}, "
                f"status {status}{problem}"
            )
        )
        journal.forget_tx(tx)
    return 0


@contextlib.contextmanager
def _account_lock(r: Session, account: str) -> Iterator[None]:
    """The account's lock under a lease of its own: refused while an apply holds the account."""
    state = r.manifest.vault.state_path
    lease = Lease(r.conn.vault, f"{state}/locks/resolve-{account}", DEFAULT_TTL_SECONDS)
    lease.acquire()
    locks = AccountLocks(r.conn.vault, state, lease, sender_locks(r.manifest))
    try:
        busy = locks.acquire([account])
        if account in busy:
            raise ProvisionerError(
                f"{account}: {busy[account].message}; nothing was resolved: run this again once "
                "that run has ended"
            )
        yield
    finally:
        locks.release()
        lease.release()
