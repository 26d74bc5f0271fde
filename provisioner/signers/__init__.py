"""Ethereum signers: where the key lives decides how we sign (local key, keystore, remote JSON-RPC)."""
