# Vault policy of the pull-request plan: `provision plan --untrusted-manifest`.
#
# The manifest it plans is the pull request's own, written by whoever can push a branch,
# and so is the workflow that runs it: this policy is what bounds the damage. It reads KV
# metadata only (versions, ownership, the content digest and the public facts apply records
# in custom_metadata), never a secret's data, and writes nothing.
#
#   vault policy write dydx-provisioner-pr-plan examples/vault/pr-plan.hcl
#   vault write auth/jwt/role/dydx-provisioner-pr-plan role_type=jwt user_claim=repository \
#       bound_audiences=vault bound_claims_type=glob \
#       bound_claims='{"repository":"ORG/trading-accounts","ref":"refs/pull/*"}' \
#       token_policies=dydx-provisioner-pr-plan token_ttl=15m token_max_ttl=30m

# Destinations (STARK keys, API keys) and the journal's folder: metadata only.
path "kv/metadata/dydx/*" {
  capabilities = ["read", "list"]
}

path "kv/metadata/dydx-provisioner/mainnet/journal/*" {
  capabilities = ["list"]
}
