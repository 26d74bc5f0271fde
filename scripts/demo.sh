#!/usr/bin/env bash
# The README's main command: start the sandbox, apply examples/sandbox.yaml, show that it converged,
# then prove the stored keys trade (scripts/trade_proof.py).
set -euo pipefail
cd "$(dirname "$0")/.."
P=.venv/bin/provision
export PATH="$PWD/.venv/bin:$PATH"
$P sandbox up
eval "$($P sandbox env)"
$P validate -f examples/sandbox.yaml
$P plan -f examples/sandbox.yaml
$P apply -f examples/sandbox.yaml --auto-approve
echo
echo "== a second plan: nothing left to do =="
$P plan -f examples/sandbox.yaml --detailed-exitcode
$P status -f examples/sandbox.yaml
echo
echo "== the proof: the official client, built only from what apply stored in Vault, trades =="
.venv/bin/python scripts/trade_proof.py --account mm-alpha
