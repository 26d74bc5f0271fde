"""The aiohttp application: what every request goes through, in order.

1. ``access``: one log line per request on stderr (no headers, no bodies), the
   errors envelope for anything raised, rate-limit headers on every answer.
2. ``count``: request counts for ``GET /admin/stats``.
3. ``inject``: configured faults (latency, 429 bursts, errors, dropped connections).
4. the endpoint: rate limit, body parsing, authentication, then the handler.

Admin routes skip 2 to 4.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import replace

from aiohttp import web
from aiohttp.typedefs import Handler

from provisioner.sandbox.emulator import errors
from provisioner.sandbox.emulator.admin import EMULATOR_KEY, add_admin_routes
from provisioner.sandbox.emulator.auth import (
    SignedRequest,
    parse_body,
    verify_api_key,
    verify_eth_private,
    verify_onboarding,
)
from provisioner.sandbox.emulator.clock import iso_from_ms, now_ms
from provisioner.sandbox.emulator.errors import ApiError, error_response, json_response
from provisioner.sandbox.emulator.rate_limit import Decision, limit_for
from provisioner.sandbox.emulator.routes import ENDPOINTS
from provisioner.sandbox.emulator.runtime import Auth, Call, Emulator, Endpoint

log = logging.getLogger("emulator.http")
_API_KEY_PARAM = re.compile(r"(apiKey=)[^&]*")

_RATE_HEADERS = web.RequestKey("rate_headers", dict)
_FOLLOWER_TASK = web.AppKey("follower_task", asyncio.Task)


class _DropConnection(Exception):
    """Close the connection without an answer (an injected fault)."""


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/v3/") or request.path == "/v3"


def _loggable(request: web.Request) -> str:
    """Path and query for the log, API-key ids masked (they are credentials' names, keep them out)."""
    return _API_KEY_PARAM.sub(r"\1***", request.path_qs)


def _route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "<unknown>"


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ApiError as exc:
        response = json_response(exc.body(), status=exc.status, headers=exc.headers)
    except _DropConnection:
        if request.transport is not None:
            request.transport.abort()
        log.info('%s "%s %s" dropped', request.remote, request.method, _loggable(request))
        return web.Response(status=204)  # never written: the transport is gone
    except web.HTTPMethodNotAllowed as exc:
        response = error_response(
            405, errors.METHOD_NOT_ALLOWED, headers={"Allow": exc.headers.get("Allow", "")}
        )
    except (UnicodeError, RecursionError):  # undecodable or absurdly nested input
        response = json_response(errors.invalid("request", "headers", None).body(), status=400)
    except web.HTTPNotFound:
        response = error_response(404, errors.NOT_FOUND)
    except web.HTTPException as exc:
        response = error_response(exc.status, exc.reason)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        response = error_response(500, "Internal server error")
    response.headers.update(request.get(_RATE_HEADERS, {}))
    elapsed_ms = (time.perf_counter() - started) * 1000
    log.info(
        '%s "%s %s" %d %.1fms',
        request.remote,
        request.method,
        request.path_qs,
        response.status,
        elapsed_ms,
    )
    return response


@web.middleware
async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_api(request):
        request.app[EMULATOR_KEY].stats.record(request.method, _route_template(request))
    return await handler(request)


@web.middleware
async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _is_api(request):
        return await handler(request)
    emulator = request.app[EMULATOR_KEY]
    verdict = emulator.faults.decide(request.method, request.path)
    if verdict.latency_ms:
        await asyncio.sleep(verdict.latency_ms / 1000)
    if verdict.outcome == "drop":
        raise _DropConnection
    if verdict.outcome == "error":
        raise ApiError(verdict.status, errors.INJECTED_FAULT)
    if verdict.outcome == "429":
        limit = limit_for(request.method)
        now = now_ms()
        burst = Decision(False, limit.points, 0, now + limit.window_ms, limit.window_ms)
        raise ApiError(429, errors.RATE_LIMITED, headers=burst.headers())
    return await handler(request)


def _rate_key(
    emulator: Emulator, endpoint: Endpoint, request: web.Request, kind: str
) -> tuple[str, ...]:
    """Public routes count per client IP; private ones per IP and the (claimed) caller."""
    ip = request.remote or "?"
    if endpoint.auth is Auth.PUBLIC:
        return (kind, ip)
    if endpoint.auth is Auth.API_KEY:
        key_id = request.headers.get("DYDX-API-KEY", "")
        stored = emulator.store.api_key(key_id) if key_id else None
        return (kind, ip, stored.address if stored is not None else f"key:{key_id}")
    return (kind, ip, request.headers.get("DYDX-ETHEREUM-ADDRESS", "").lower())


def _endpoint_handler(endpoint: Endpoint) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        emulator = request.app[EMULATOR_KEY]
        now = now_ms()
        body_text = await request.text()
        bad_body: ApiError | None = None
        try:
            body_json = parse_body(body_text)
        except ApiError as exc:  # still counted against the limit, then refused
            bad_body, body_json = exc, None
        signed = SignedRequest(
            request.method, request.raw_path, request.headers, body_text, body_json
        )
        call = Call(emulator=emulator, request=request, signed=signed)
        charge = endpoint.charge_for(call)
        decision = emulator.limiter.hit(
            _rate_key(emulator, endpoint, request, charge.bucket), charge.limit, now, charge.points
        )
        request[_RATE_HEADERS] = decision.headers()
        if not decision.allowed:
            raise ApiError(429, errors.RATE_LIMITED)
        if bad_body is not None:
            raise bad_body
        chain_id = emulator.config.chain_id
        if endpoint.auth is Auth.ONBOARDING:
            address, signature = verify_onboarding(signed, chain_id)
            call = replace(call, address=address, onboarding_signature=signature)
        elif endpoint.auth is Auth.ETH_KEY:
            call = replace(call, address=verify_eth_private(signed, chain_id, now))
        elif endpoint.auth is Auth.API_KEY:
            call = replace(call, address=verify_api_key(signed, emulator.store, now).address)
            emulator.store.expire_orders(iso_from_ms(now))
        return await endpoint.handler(call)

    return handle


async def _start_follower(app: web.Application) -> None:
    app[_FOLLOWER_TASK] = asyncio.create_task(app[EMULATOR_KEY].follower.run())


async def _stop(app: web.Application) -> None:
    task = app.get(_FOLLOWER_TASK)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    emulator = app[EMULATOR_KEY]
    await emulator.rpc.close()
    emulator.store.close()


def create_app(emulator: Emulator, *, follow_chain: bool = True) -> web.Application:
    app = web.Application(middlewares=[access, count, inject], client_max_size=64 * 1024)
    app[EMULATOR_KEY] = emulator
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, _endpoint_handler(endpoint))
    if emulator.config.admin:
        add_admin_routes(app)
    if follow_chain:
        app.on_startup.append(_start_follower)
    app.on_cleanup.append(_stop)
    return app
