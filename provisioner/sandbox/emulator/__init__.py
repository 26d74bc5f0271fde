"""The sandbox's dYdX v3 REST API emulator (issues #4 and #18).

Run: ``python -m provisioner.sandbox.emulator --db PATH --rpc-url URL [...]``.
Endpoints are in routes.py (orders and withdrawals in trading.py, their STARK
messages in stark_messages.py, the curve in stark_crypto.py). The statuses and
messages it answers with are listed in errors.py; the admin surface for tests in
admin.py.
"""
