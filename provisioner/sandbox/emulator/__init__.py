"""The sandbox's dYdX v3 REST API emulator (issue #4).

Run: ``python -m provisioner.sandbox.emulator --db PATH --rpc-url URL [...]``.
The statuses and messages it answers with are listed in errors.py; the admin
surface for tests in admin.py.
"""
