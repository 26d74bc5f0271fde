# A trading bot picks up a rotated dYdX API key from Vault with Vault Agent (or OpenBao's
# agent), no code change in the bot. `provision apply` writes the new key as a new version of
# the same KV v2 path; the old key keeps working for the key's `rotation_overlap`.
#
#   vault agent -config=examples/consumers/vault-agent.hcl
#
# Process supervisor mode (the `exec` block): the agent renders the credentials into the
# bot's environment and restarts the bot when a new version shows up. The restart happens
# within static_secret_render_interval of the rotation, plus the bot's own start time:
# rotation_overlap must be longer than that sum (see the README, "Who reads a rotated key").

vault {
  address = "https://vault.trading.svc:8200"
}

auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role = "mm-eu-1-quoter" # a read-only policy on kv/data/dydx/mainnet/mm-eu-1/api/quoter
    }
  }
}

template_config {
  # KV v2 secrets have no lease: the agent re-reads them this often (default 5m)
  static_secret_render_interval = "1m"
  exit_on_retry_failure         = true
}

env_template "DYDX_API_KEY" {
  contents             = "{{ with secret \"kv/data/dydx/mainnet/mm-eu-1/api/quoter\" }}{{ .Data.data.key }}{{ end }}"
  error_on_missing_key = true
}

env_template "DYDX_API_SECRET" {
  contents             = "{{ with secret \"kv/data/dydx/mainnet/mm-eu-1/api/quoter\" }}{{ .Data.data.secret }}{{ end }}"
  error_on_missing_key = true
}

env_template "DYDX_API_PASSPHRASE" {
  contents             = "{{ with secret \"kv/data/dydx/mainnet/mm-eu-1/api/quoter\" }}{{ .Data.data.passphrase }}{{ end }}"
  error_on_missing_key = true
}

exec {
  command                   = ["python", "-m", "bot", "--market", "ETH-USD"]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGTERM" # the bot cancels its orders and exits
}
