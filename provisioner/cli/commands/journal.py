"""`provision journal resolve`: a person settles a journal entry the tool must not settle alone.

A request a remote signer never answered (it may still send it, with this nonce or another),
or a transaction a signer sent that differs from what it was asked, blocks its sender: no new
transaction goes out from that address until the entry's nonce is used on chain, or someone who
knows what the signer did (refused it, cancelled it, it was reviewed) resolves it here. The entry
is printed before it is removed; nothing is sent.
"""

from __future__ import annotations

import argparse

from provisioner.cli.runtime import session_from_args
from provisioner.errors import ProvisionerError
from provisioner.journal import PENDING, Journal, tx_status


def run(args: argparse.Namespace) -> int:
    args.shard = None
    r = session_from_args(args, [args.account])
    spec = r.manifest.account(args.account)
    network = r.manifest.network
    journal = Journal(r.conn.vault, r.manifest.vault.state_path)
    entries = [
        tx
        for tx in journal.transactions(network.chain_id, spec.address, spec.name)
        if tx.nonce == args.nonce
    ]
    if not entries:
        raise ProvisionerError(
            f"no journaled transaction with nonce {args.nonce} for {spec.name} ({spec.address})"
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
