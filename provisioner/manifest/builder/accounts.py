"""``accounts:`` with ``defaults:`` applied, as ``AccountSpec``s, and the checks across them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from provisioner.manifest import paths
from provisioner.manifest.builder import checks
from provisioner.manifest.builder.checks import Destination
from provisioner.manifest.builder.reader import Reader, Sourced
from provisioner.manifest.builder.signers import account_signer
from provisioner.manifest.durations import EXPECTED as DURATION_EXPECTED
from provisioner.manifest.durations import DurationProblem, parse_duration
from provisioner.manifest.model import DEFAULT_ROTATION_OVERLAP, AccountSpec, ApiKeySpec
from provisioner.manifest.positions import NodePath, format_path


def accounts(
    r: Reader, root: dict[str, Any], state_path: str | None
) -> tuple[AccountSpec, ...] | None:
    items = root.get("accounts")
    if not isinstance(items, list) or r.findings.explained(("accounts",)):
        return None
    defaults = r.get_container(root, "defaults", ()) or {}
    default_deposit = _default_deposit(r, defaults)
    checks.api_key_names(r, defaults.get("api_keys"), ("defaults", "api_keys"))

    specs: list[AccountSpec] = []
    names: dict[str, NodePath] = {}
    addresses: dict[str, tuple[str, NodePath]] = {}
    destinations: list[Destination] = []
    complete = True
    for index, raw in enumerate(items):
        path: NodePath = ("accounts", index)
        if not isinstance(raw, dict) or r.findings.explained(path):
            complete = False
            continue
        spec = _account(r, raw, path, defaults, default_deposit, destinations)
        checks.unique_name(r, raw, path, names)
        checks.unique_address(r, raw, path, addresses)
        if spec is None:
            complete = False
        else:
            specs.append(spec)
    checks.destinations(r, destinations, state_path)
    return tuple(specs) if complete else None


def _default_deposit(r: Reader, defaults: dict[str, Any]) -> Sourced | None:
    raw = r.get(defaults, "deposit", ("defaults",))
    if raw is None:
        return None
    amount = r.amount(raw)
    return Sourced(amount, raw.path) if amount is not None else None


def _account(
    r: Reader,
    raw: dict[str, Any],
    path: NodePath,
    defaults: dict[str, Any],
    default_deposit: Sourced | None,
    destinations: list[Destination],
) -> AccountSpec | None:
    name_raw = r.get(raw, "name", path)
    name = name_raw.value if name_raw and isinstance(name_raw.value, str) else None
    address_raw = r.get(raw, "address", path)
    address = r.address(address_raw) if address_raw else None
    label = f"account '{name}'" if name else format_path(path)

    deposit: Decimal | None = None
    if "deposit" in raw:
        if (own := r.get(raw, "deposit", path)) is not None:
            deposit = r.amount(own)
    elif default_deposit is not None:
        deposit = default_deposit.value
    elif "deposit" not in defaults:
        r.report(
            path,
            f"{label} has no deposit",
            'deposit: "<USDC amount>" in the account, or in defaults (0 for none)',
            blocking=False,
        )

    allowance_raw = r.get(raw, "allowance", path) or r.get(defaults, "allowance", ("defaults",))
    allowance: Literal["exact", "max"] = (
        "max" if allowance_raw and allowance_raw.value == "max" else "exact"
    )

    if name is None:
        return None  # templates need the name; the name's own problem is already reported

    signer, signer_ok = account_signer(r, raw, path, defaults, name)
    stark = _stark_key(r, raw, path, defaults, name, label, destinations)
    api_keys = _api_keys(r, raw, path, defaults, name, destinations)
    if address is None or deposit is None or not signer_ok or stark is None or api_keys is None:
        return None
    return AccountSpec(
        name=name,
        address=address,
        signer=signer,
        deposit=deposit,
        stark_key_path=stark,
        api_keys=api_keys,
        allowance=allowance,
        location=r.findings.doc.locate(path),
    )


def _stark_key(
    r: Reader,
    raw: dict[str, Any],
    path: NodePath,
    defaults: dict[str, Any],
    name: str,
    label: str,
    destinations: list[Destination],
) -> str | None:
    own = raw.get("secrets")
    if isinstance(own, dict) and "stark_key" in own:
        source = r.get(own, "stark_key", (*path, "secrets"))
    else:
        inherited = defaults.get("secrets")
        if isinstance(inherited, dict) and "stark_key" in inherited:
            source = r.get(inherited, "stark_key", ("defaults", "secrets"))
        else:
            if not r.findings.explained((*path, "secrets")):
                r.report(
                    path,
                    f"{label} has no secrets.stark_key",
                    "secrets: {stark_key: <vault path>} in the account, "
                    "or a template such as dydx/{name}/stark in defaults",
                    blocking=False,
                )
            return None
    if source is None:
        return None
    return _destination(r, source, name, "secrets.stark_key", destinations)


def _destination(
    r: Reader, source: Sourced, account: str, what: str, destinations: list[Destination]
) -> str | None:
    if not isinstance(source.value, str):
        return None
    vault_path = paths.expand(source.value, account)
    if not paths.is_vault_path(vault_path):
        r.report(
            source.path,
            f"{format_path(source.path)} is not a valid Vault path for {account}",
            paths.PATH_EXPECTED,
        )
        return None
    destinations.append(Destination(vault_path, source.path, account, what))
    return vault_path


def _api_keys(
    r: Reader,
    raw: dict[str, Any],
    path: NodePath,
    defaults: dict[str, Any],
    name: str,
    destinations: list[Destination],
) -> tuple[ApiKeySpec, ...] | None:
    """The account's API keys merged by name over the default ones (the account's entry wins)."""
    own_path: NodePath = (*path, "api_keys")
    checks.api_key_names(r, raw.get("api_keys"), own_path)
    merged: dict[str, Sourced] = {}
    for items, base in (
        (defaults.get("api_keys"), ("defaults", "api_keys")),
        (raw.get("api_keys"), own_path),
    ):
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            entry_path: NodePath = (*base, index)
            if not isinstance(item, dict) or r.findings.explained(entry_path):
                return None
            key_name = item.get("name")
            if isinstance(key_name, str):
                merged[key_name] = Sourced(item, entry_path)
    specs = []
    complete = True
    for key_name, entry in merged.items():
        secret = r.get(entry.value, "secret", entry.path)
        if secret is None:
            complete = False
            continue
        vault_path = _destination(r, secret, name, f"api key '{key_name}'", destinations)
        policy = _rotation(r, entry, defaults, key_name)
        if vault_path is None or policy is None:
            complete = False
            continue
        rotate_after, overlap = policy
        specs.append(
            ApiKeySpec(
                key_name,
                vault_path,
                r.findings.doc.locate(entry.path),
                rotate_after=rotate_after,
                rotation_overlap=overlap,
            )
        )
    return tuple(specs) if complete else None


_DEFAULT_KEY_NOT_ROTATED = (
    "the default API key cannot be rotated: dYdX derives it from the wallet's onboarding "
    "signature, so a new one cannot be made, and it is never deleted (the web app needs it)"
)


def _rotation(
    r: Reader, entry: Sourced, defaults: dict[str, Any], key_name: str
) -> tuple[int | None, int] | None:
    """(rotate_after, rotation_overlap) in seconds, the key's own values over ``defaults``'
    (which apply to named keys only); None after reporting a problem."""
    if key_name == "default":
        for field in ("rotate_after", "rotation_overlap"):
            own = r.get(entry.value, field, entry.path)
            if own is not None:
                r.report(
                    own.path,
                    f"{format_path(own.path)}: {_DEFAULT_KEY_NOT_ROTATED}",
                    f"no {field} on the default key; rotate a named key (e.g. name: quoter)",
                )
                return None
        return None, DEFAULT_ROTATION_OVERLAP
    values: dict[str, int | None] = {"rotate_after": None, "rotation_overlap": None}
    for field in values:
        raw = r.get(entry.value, field, entry.path) or r.get(defaults, field, ("defaults",))
        if raw is None:
            continue
        try:
            values[field] = parse_duration(raw.value)
        except DurationProblem as problem:
            r.report(raw.path, f"{format_path(raw.path)} {problem}", DURATION_EXPECTED)
            return None
        if field == "rotate_after" and values[field] == 0:
            r.report(
                raw.path,
                f"{format_path(raw.path)} is 0: a key would be rotated on every apply",
                "a duration above zero, such as 90d",
            )
            return None
    overlap = values["rotation_overlap"]
    return values["rotate_after"], DEFAULT_ROTATION_OVERLAP if overlap is None else overlap
