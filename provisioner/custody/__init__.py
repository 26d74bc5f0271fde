"""Key custody beyond signers: keys taken from the dYdX web app instead of derived from the Ethereum key."""
