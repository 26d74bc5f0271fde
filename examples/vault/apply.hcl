# Vault policy of apply: `provision apply` on a merge to main (GitHub environment
# "production", whose required reviewers gate it).
#
# Writes the destinations (metadata first, then the data with check-and-set), takes its
# leases and keeps its journal under state_path, and reads the signer keys. Nothing else
# in Vault is reachable with it, and no other role can write.
#
#   vault policy write dydx-provisioner-apply examples/vault/apply.hcl
#   vault write auth/jwt/role/dydx-provisioner-ci role_type=jwt user_claim=repository \
#       bound_audiences=vault bound_claims_type=glob \
#       bound_claims='{"repository":"ORG/trading-accounts","ref":"refs/heads/main","environment":"production"}' \
#       token_policies=dydx-provisioner-apply token_ttl=1h

path "kv/data/dydx/*" {
  capabilities = ["create", "update", "read"]
}

path "kv/metadata/dydx/*" {
  capabilities = ["create", "update", "read", "list"]
}

# locks (leases) and the journal
path "kv/data/dydx-provisioner/mainnet/*" {
  capabilities = ["create", "update", "read"]
}

path "kv/metadata/dydx-provisioner/mainnet/*" {
  capabilities = ["create", "update", "read", "list", "delete"]
}

# the Ethereum keys that sign onboarding, registration, deposits and API key creation
path "kv/data/signers/*" {
  capabilities = ["read"]
}
