# Vault policy of the nightly drift check: `provision plan --detailed-exitcode` on main.
#
# It runs the reviewed manifest, reads what apply wrote (the API key credentials are what
# it lists the keys at dYdX with; the STARK secret says which key is registered) and writes
# nothing. It cannot read the Ethereum signer keys: an account with work shows its signing
# steps blocked, and the plan still exits 2.
#
#   vault policy write dydx-provisioner-drift examples/vault/drift.hcl
#   vault write auth/jwt/role/dydx-provisioner-drift role_type=jwt user_claim=repository \
#       bound_audiences=vault bound_claims_type=glob \
#       bound_claims='{"repository":"ORG/trading-accounts","ref":"refs/heads/main","event_name":["schedule","workflow_dispatch"]}' \
#       token_policies=dydx-provisioner-drift token_ttl=30m

path "kv/data/dydx/*" {
  capabilities = ["read"]
}

path "kv/metadata/dydx/*" {
  capabilities = ["read", "list"]
}

# the journal: what an interrupted apply left (signed transactions, API key intents)
path "kv/data/dydx-provisioner/mainnet/journal/*" {
  capabilities = ["read"]
}

path "kv/metadata/dydx-provisioner/mainnet/journal/*" {
  capabilities = ["read", "list"]
}
