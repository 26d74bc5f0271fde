"""The only modules that talk to the outside: Vault, the chain, dYdX, all through ``transport``."""
