"""The admin surface for tests (only with ``--admin``); JSON in and out, never rate limited.

- ``GET /admin/faults`` the rules; ``POST /admin/faults`` add one rule (an object)
  or several (``{"rules": [...]}``), see faults.py; ``DELETE /admin/faults`` clear
- ``POST /admin/reset`` forget users, accounts, API keys, rate-limit windows,
  faults and request counts (chain facts stay: they are the chain's)
- ``GET /admin/stats`` request counts per ``"METHOD /v3/path-template"``, ``writes``
  (non-GET) and ``total``; ``DELETE /admin/stats`` zero them
- ``GET /admin/chain`` the chain follower's head, cursor and confirmations;
  ``POST /admin/confirmations`` ``{"confirmations": N}`` change N at run time
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from provisioner.sandbox.emulator.errors import ApiError, json_response
from provisioner.sandbox.emulator.runtime import Emulator

EMULATOR_KEY = web.AppKey("emulator", Emulator)


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.text() or "{}")
    except ValueError:
        raise ApiError(400, "body is not JSON") from None


def _emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR_KEY]


async def get_faults(request: web.Request) -> web.StreamResponse:
    return json_response({"rules": [r.as_json() for r in _emulator(request).faults.rules()]})


async def post_faults(request: web.Request) -> web.StreamResponse:
    spec = await _json(request)
    specs = spec["rules"] if isinstance(spec, dict) and "rules" in spec else [spec]
    if not isinstance(specs, list):
        raise ApiError(400, "rules must be a list")
    plan = _emulator(request).faults
    added = []
    for one in specs:
        try:
            added.append(plan.add(one).as_json())
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    return json_response({"added": added, "rules": [r.as_json() for r in plan.rules()]})


async def delete_faults(request: web.Request) -> web.StreamResponse:
    _emulator(request).faults.clear()
    return json_response({"rules": []})


async def post_reset(request: web.Request) -> web.StreamResponse:
    _emulator(request).reset()
    return json_response({"reset": True})


async def get_stats(request: web.Request) -> web.StreamResponse:
    return json_response(_emulator(request).stats.snapshot())


async def delete_stats(request: web.Request) -> web.StreamResponse:
    stats = _emulator(request).stats
    stats.clear()
    return json_response(stats.snapshot())


async def get_chain(request: web.Request) -> web.StreamResponse:
    return json_response(_emulator(request).follower.status())


async def post_confirmations(request: web.Request) -> web.StreamResponse:
    spec = await _json(request)
    value = spec.get("confirmations") if isinstance(spec, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
        raise ApiError(400, "confirmations must be an integer from 0 to 10000")
    follower = _emulator(request).follower
    follower.confirmations = value
    return json_response(follower.status())


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/faults", get_faults)
    app.router.add_post("/admin/faults", post_faults)
    app.router.add_delete("/admin/faults", delete_faults)
    app.router.add_post("/admin/reset", post_reset)
    app.router.add_get("/admin/stats", get_stats)
    app.router.add_delete("/admin/stats", delete_stats)
    app.router.add_get("/admin/chain", get_chain)
    app.router.add_post("/admin/confirmations", post_confirmations)
