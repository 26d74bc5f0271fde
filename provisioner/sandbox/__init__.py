"""The local sandbox: Vault, anvil with stand-in contracts, dYdX v3 emulator."""
