"""The only modules that talk to the outside: Vault, the chain and dYdX."""
