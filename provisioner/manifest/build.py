"""From schema-checked data to typed desired state, with the checks a schema cannot make.

Defaults: each of ``deposit``, ``allowance``, ``signer``, ``secrets.stark_key``
and ``api_keys`` in ``defaults:`` applies to every account that does not set
it. An account's own value wins; ``signer: null`` opts an account out of a
default signer (import-only); ``api_keys`` merge by name, the account's entry
replacing a default one of the same name.

Templates: in the strings of an account or of ``defaults`` (Vault paths,
references, keystore paths, remote URLs), ``{name}`` becomes the account name
and ``{NAME}`` the name upper-cased with ``-`` as ``_`` (for variable names).

References become ``SecretRef`` and are never read here. Values an earlier
phase found bad are skipped, so one mistake yields one message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from provisioner.manifest import paths
from provisioner.manifest.addresses import AddressProblem, checksummed
from provisioner.manifest.amounts import EXPECTED as AMOUNT_EXPECTED
from provisioner.manifest.amounts import AmountProblem, parse_amount
from provisioner.manifest.findings import Findings
from provisioner.manifest.interpolate import substitute
from provisioner.manifest.model import (
    AccountSpec,
    ApiKeySpec,
    KeystoreSigner,
    Manifest,
    NetworkSpec,
    PrivateKeySigner,
    RemoteSigner,
    SecretRef,
    Signer,
    VaultAuth,
    VaultSpec,
)
from provisioner.manifest.positions import NodePath, format_path
from provisioner.networks import BY_CHAIN_ID, MAINNET, SEPOLIA, KnownNetwork

K8S_SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
DEFAULT_MOUNT = "secret"
DEFAULT_STATE_PATH = "dydx-provisioner"


@dataclass(frozen=True)
class _Shorthand:
    known: KnownNetwork
    api_url: str
    rpc_url: str
    confirmations: int | None


SHORTHANDS = {
    "mainnet": _Shorthand(MAINNET, MAINNET.api_url, "${ETH_RPC_URL}", None),
    "sepolia": _Shorthand(SEPOLIA, SEPOLIA.api_url, "${ETH_RPC_URL}", None),
    "sandbox": _Shorthand(SEPOLIA, "${DYDX_API_URL}", "${ETH_RPC_URL}", 2),
}
# Mainnet pays real fees: without a ceiling of its own a transaction may pay at most this much
# per gas (a spike several times the usual; a network block's max_fee_gwei overrides it).
DEFAULT_MAX_FEE_GWEI = {MAINNET.chain_id: Decimal(200)}
GWEI_EXPECTED = 'a fee per gas in gwei such as 150 or "0.5" (> 0, at most 9 decimal places)'


@dataclass(frozen=True)
class _Sourced:
    """A value and the path it was written at (in the account, or in defaults)."""

    value: Any
    path: NodePath


@dataclass(frozen=True)
class _Destination:
    vault_path: str
    source: NodePath
    account: str
    what: str


class ManifestBuilder:
    """Builds a ``Manifest`` from checked data, reporting to ``findings``; None if anything is wrong."""

    def __init__(
        self, data: object, findings: Findings, env: Mapping[str, str], base_dir: str
    ) -> None:
        self.data = data
        self.findings = findings
        self.env = env
        self.base_dir = base_dir

    # -- helpers -------------------------------------------------------------

    def _report(self, path: NodePath, message: str, expected: str, **kw: Any) -> None:
        self.findings.report(path, message, expected, **kw)

    def _ok(self, path: NodePath) -> bool:
        return self.findings.trusted(path)

    def _get(self, obj: object, key: str, path: NodePath) -> _Sourced | None:
        """The trusted value at ``obj[key]``, or None when absent or already reported."""
        if not isinstance(obj, dict) or key not in obj:
            return None
        child = (*path, key)
        if not self._ok(child):
            return None
        return _Sourced(obj[key], child)

    def _location_line(self, path: NodePath) -> int:
        return self.findings.doc.locate(path).line

    # -- top level -----------------------------------------------------------

    def build(self) -> Manifest | None:
        root = self.data
        if not isinstance(root, dict):
            return None
        network = self._network(root)
        vault = self._vault(root)
        max_deposit = None
        if (raw := self._get(root, "max_deposit", ())) is not None:
            max_deposit = self._amount(raw)
        accounts = self._accounts(root, self._state_path(root))
        if network is None or vault is None or accounts is None or self.findings:
            return None
        return Manifest(
            path=self.findings.doc.file,
            version=1,
            network=network,
            vault=vault,
            accounts=accounts,
            max_deposit=max_deposit,
            extra={k: v for k, v in root.items() if k.startswith("x-")},
        )

    # -- network -------------------------------------------------------------

    def _network(self, root: dict[str, Any]) -> NetworkSpec | None:
        if isinstance(root.get("network"), str):
            raw = self._get(root, "network", ())
            return self._network_shorthand(raw.value, raw.path) if raw is not None else None
        block = self._get_container(root, "network", ())
        return self._network_block(block, ("network",)) if block is not None else None

    def _network_shorthand(self, name: str, path: NodePath) -> NetworkSpec | None:
        short = SHORTHANDS.get(name)
        if short is None:
            return None
        urls = {}
        for field_name, template in (("api_url", short.api_url), ("rpc_url", short.rpc_url)):
            sub = substitute(template, self.env)
            for var in sub.missing:
                self._report(
                    path,
                    f"network '{name}' takes its {field_name} from {var}, which is not set",
                    f"{var} in the environment"
                    + (" ('provision sandbox env' prints it)" if name == "sandbox" else "")
                    + f", or a network block with {field_name}",
                    blocking=False,
                )
            if sub.missing:
                return None
            if not sub.text.startswith(("http://", "https://", "ws://", "wss://")):
                var = template.strip("${}")
                self._report(
                    path,
                    f"network '{name}' takes its {field_name} from {var}, which is not a URL",
                    f"{var} set to an http(s):// URL",
                    blocking=False,
                )
                return None
            urls[field_name] = sub.text
        known = short.known
        spec = NetworkSpec(
            name=name,
            chain_id=known.chain_id,
            api_url=urls["api_url"],
            rpc_url=urls["rpc_url"],
            exchange_contract=known.exchange_contract,
            usdc_contract=known.usdc_contract,
            collateral_asset_id=known.collateral_asset_id,
        )
        if short.confirmations is not None:
            spec = replace(spec, confirmations=short.confirmations)
        return replace(spec, max_fee_gwei=DEFAULT_MAX_FEE_GWEI.get(known.chain_id))

    def _network_block(self, block: dict[str, Any], path: NodePath) -> NetworkSpec | None:
        values: dict[str, Any] = {}
        for key in ("name", "chain_id", "api_url", "rpc_url", "confirmations"):
            if (raw := self._get(block, key, path)) is not None:
                values[key] = raw.value
        for key in ("exchange_contract", "usdc_contract"):
            if (raw := self._get(block, key, path)) is not None:
                values[key] = self._address(raw)
        if (raw := self._get(block, "collateral_asset_id", path)) is not None:
            value = raw.value
            values["collateral_asset_id"] = int(value, 16) if isinstance(value, str) else value
        if (raw := self._get(block, "max_fee_gwei", path)) is not None:
            values["max_fee_gwei"] = self._gwei(raw)

        chain_id = values.get("chain_id")
        if not isinstance(chain_id, int):
            return None
        known = BY_CHAIN_ID.get(chain_id)
        defaultable = ("exchange_contract", "usdc_contract", "collateral_asset_id")
        missing = [k for k in defaultable if k not in block]
        if known is None and missing:
            self._report(
                (*path, "chain_id"),
                f"chain {chain_id} is not one dYdX v3 ran on, so {', '.join(missing)} "
                "cannot be defaulted",
                "exchange_contract, usdc_contract and collateral_asset_id in the network block "
                "(defaults exist for chains "
                + ", ".join(str(c) for c in sorted(BY_CHAIN_ID))
                + ")",
                blocking=False,
            )
            return None
        for key in defaultable:
            if key not in block and known is not None:
                values[key] = getattr(known, key)
        required = ("name", "api_url", "rpc_url", *defaultable)
        if any(values.get(k) is None for k in required) or (
            "max_fee_gwei" in block and values.get("max_fee_gwei") is None
        ):
            return None
        values.setdefault("max_fee_gwei", DEFAULT_MAX_FEE_GWEI.get(chain_id))
        return NetworkSpec(**values)

    # -- vault ---------------------------------------------------------------

    def _vault(self, root: dict[str, Any]) -> VaultSpec | None:
        block = self._get_container(root, "vault", ())
        if block is None:
            return None
        base: NodePath = ("vault",)
        address = self._get(block, "address", base)
        auth = self._auth(block, base)
        mount = self._get(block, "mount", base)
        state_path = self._get(block, "state_path", base)
        namespace = self._get(block, "namespace", base)
        if address is None or auth is None:
            return None
        if ("mount" in block and mount is None) or ("state_path" in block and state_path is None):
            return None
        return VaultSpec(
            address=address.value,
            auth=auth,
            mount=mount.value if mount else DEFAULT_MOUNT,
            state_path=state_path.value if state_path else DEFAULT_STATE_PATH,
            namespace=namespace.value if namespace else None,
        )

    def _get_container(self, obj: object, key: str, path: NodePath) -> dict[str, Any] | None:
        """A mapping value whose own shape may hold problems further down (checked per field)."""
        if not isinstance(obj, dict) or not isinstance(obj.get(key), dict):
            return None
        if self.findings.explained((*path, key)):
            return None
        value: dict[str, Any] = obj[key]
        return value

    def _auth(self, vault: dict[str, Any], base: NodePath) -> VaultAuth | None:
        if "auth" not in vault:
            return VaultAuth("token", token=SecretRef("env", "VAULT_TOKEN"))
        auth = self._get_container(vault, "auth", base)
        path: NodePath = (*base, "auth")
        if auth is None or (method := self._get(auth, "method", path)) is None:
            return None
        kind = method.value

        def ref(key: str) -> SecretRef | None:
            raw = self._get_container(auth, key, path)
            return self._ref(raw, (*path, key), None) if raw is not None else None

        def text(key: str) -> str | None:
            raw = self._get(auth, key, path)
            return raw.value if raw is not None and isinstance(raw.value, str) else None

        mount_path = text("mount_path") or (None if kind == "token" else kind)
        if kind == "token":
            token = ref("token") if "token" in auth else SecretRef("env", "VAULT_TOKEN")
            return VaultAuth("token", token=token) if token else None
        if kind == "approle":
            role, secret_id = text("role_id"), ref("secret_id")
            if role is None or secret_id is None:
                return None
            return VaultAuth("approle", role=role, secret_id=secret_id, mount_path=mount_path)
        if kind in ("jwt", "kubernetes"):
            role = text("role")
            if "jwt" in auth:
                jwt = ref("jwt")
            elif kind == "kubernetes":
                jwt = SecretRef("file", K8S_SERVICE_ACCOUNT_TOKEN)
            else:
                jwt = None
            if role is None or jwt is None:
                return None
            return VaultAuth(kind, role=role, jwt=jwt, mount_path=mount_path)
        return None

    # -- references ----------------------------------------------------------

    def _ref(self, raw: dict[str, Any], path: NodePath, account: str | None) -> SecretRef | None:
        """A reference, templates expanded, never read. ``account`` is None outside accounts."""
        if len(raw) != 1 or not self._ok(path):
            return None
        kind, target = next(iter(raw.items()))
        if not isinstance(target, str):
            return None
        where = (*path, kind)
        location = self.findings.doc.locate(where)
        target = self._expand(target, where, account)
        if target is None:
            return None
        if kind == "vault":
            parts = paths.split_vault_ref(target)
            if parts is None:
                self._report(
                    where, f"{format_path(where)} is not a valid 'path#field'", paths.PATH_EXPECTED
                )
                return None
            return SecretRef("vault", parts[0], parts[1], location=location)
        if kind == "env":
            if not paths.ENV_NAME.fullmatch(target):
                self._report(
                    where,
                    f"{format_path(where)} names '{target}', which is not a valid variable name",
                    "letters, digits and '_' (use {NAME} for the account name in upper case)",
                )
                return None
            return SecretRef("env", target, location=location)
        if kind == "file":
            return SecretRef("file", self._local_path(target), location=location)
        return None

    def _expand(self, template: str, path: NodePath, account: str | None) -> str | None:
        if not paths.has_placeholder(template):
            return template
        if account is None:
            self._report(
                path,
                f"{format_path(path)} uses {{name}}, which only means something in an account or in defaults",
                "a literal value",
            )
            return None
        return paths.expand(template, account)

    def _local_path(self, target: str) -> str:
        return os.path.normpath(os.path.join(self.base_dir, target))

    # -- values --------------------------------------------------------------

    def _amount(self, raw: _Sourced) -> Decimal | None:
        try:
            return parse_amount(raw.value)
        except AmountProblem as problem:
            self._report(raw.path, f"{format_path(raw.path)} {problem}", AMOUNT_EXPECTED)
            return None

    def _gwei(self, raw: _Sourced) -> Decimal | None:
        value = raw.value
        try:
            gwei = (
                Decimal(value)
                if isinstance(value, str | int | Decimal) and not isinstance(value, bool)
                else None
            )
        except ArithmeticError:
            gwei = None
        if gwei is None or not gwei.is_finite() or gwei <= 0 or (gwei * 10**9) % 1:
            self._report(
                raw.path, f"{format_path(raw.path)} {str(value)[:40]!r} is not a fee", GWEI_EXPECTED
            )
            return None
        return gwei

    def _address(self, raw: _Sourced) -> str | None:
        if not isinstance(raw.value, str):
            return None
        try:
            return checksummed(raw.value)
        except AddressProblem as problem:
            self._report(
                raw.path,
                f"{format_path(raw.path)} {problem}",
                "the address exactly as the wallet shows it, or written all in lower case",
            )
            return None

    # -- accounts ------------------------------------------------------------

    def _state_path(self, root: dict[str, Any]) -> str | None:
        """vault.state_path as written (or its default), even when other vault settings are wrong."""
        vault = root.get("vault")
        if not isinstance(vault, dict):
            return None
        if "state_path" not in vault:
            return DEFAULT_STATE_PATH
        raw = self._get(vault, "state_path", ("vault",))
        return raw.value if raw is not None and isinstance(raw.value, str) else None

    def _accounts(
        self, root: dict[str, Any], state_path: str | None
    ) -> tuple[AccountSpec, ...] | None:
        items = root.get("accounts")
        if not isinstance(items, list) or self.findings.explained(("accounts",)):
            return None
        defaults = self._get_container(root, "defaults", ()) or {}
        default_deposit = self._default_deposit(defaults)
        self._check_api_key_names(defaults.get("api_keys"), ("defaults", "api_keys"))

        specs: list[AccountSpec] = []
        names: dict[str, NodePath] = {}
        addresses: dict[str, tuple[str, NodePath]] = {}
        destinations: list[_Destination] = []
        complete = True
        for index, raw in enumerate(items):
            path: NodePath = ("accounts", index)
            if not isinstance(raw, dict) or self.findings.explained(path):
                complete = False
                continue
            spec = self._account(raw, path, defaults, default_deposit, destinations)
            self._check_unique_name(raw, path, names)
            self._check_unique_address(raw, path, addresses)
            if spec is None:
                complete = False
            else:
                specs.append(spec)
        self._check_destinations(destinations, state_path)
        return tuple(specs) if complete else None

    def _default_deposit(self, defaults: dict[str, Any]) -> _Sourced | None:
        raw = self._get(defaults, "deposit", ("defaults",))
        if raw is None:
            return None
        amount = self._amount(raw)
        return _Sourced(amount, raw.path) if amount is not None else None

    def _account(
        self,
        raw: dict[str, Any],
        path: NodePath,
        defaults: dict[str, Any],
        default_deposit: _Sourced | None,
        destinations: list[_Destination],
    ) -> AccountSpec | None:
        name_raw = self._get(raw, "name", path)
        name = name_raw.value if name_raw and isinstance(name_raw.value, str) else None
        address_raw = self._get(raw, "address", path)
        address = self._address(address_raw) if address_raw else None
        label = f"account '{name}'" if name else format_path(path)

        deposit: Decimal | None = None
        if "deposit" in raw:
            if (own := self._get(raw, "deposit", path)) is not None:
                deposit = self._amount(own)
        elif default_deposit is not None:
            deposit = default_deposit.value
        elif "deposit" not in defaults:
            self._report(
                path,
                f"{label} has no deposit",
                'deposit: "<USDC amount>" in the account, or in defaults (0 for none)',
                blocking=False,
            )

        allowance_raw = self._get(raw, "allowance", path) or self._get(
            defaults, "allowance", ("defaults",)
        )
        allowance: Literal["exact", "max"] = (
            "max" if allowance_raw and allowance_raw.value == "max" else "exact"
        )

        if name is None:
            return None  # templates need the name; the name's own problem is already reported

        signer, signer_ok = self._account_signer(raw, path, defaults, name)
        stark = self._stark_key(raw, path, defaults, name, label, destinations)
        api_keys = self._api_keys(raw, path, defaults, name, destinations)
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
            location=self.findings.doc.locate(path),
        )

    def _account_signer(
        self, raw: dict[str, Any], path: NodePath, defaults: dict[str, Any], name: str
    ) -> tuple[Signer | None, bool]:
        if "signer" in raw:
            source, base = raw, path
        elif "signer" in defaults:
            source, base = defaults, ("defaults",)
        else:
            return None, True  # import-only
        block = source["signer"]
        signer_path: NodePath = (*base, "signer")
        if block is None:
            return None, True
        if not isinstance(block, dict) or self.findings.explained(signer_path) or len(block) != 1:
            return None, False
        signer = self._signer(block, signer_path, name)
        return signer, signer is not None

    def _signer(self, block: dict[str, Any], path: NodePath, name: str) -> Signer | None:
        kind, body = next(iter(block.items()))
        where: NodePath = (*path, kind)
        if not isinstance(body, dict) or self.findings.explained(where):
            return None
        if kind == "private_key":
            key = self._ref(body, where, name)
            return PrivateKeySigner(key) if key else None
        if kind == "keystore":
            keystore_path = self._get(body, "path", where)
            password = self._get_container(body, "password", where)
            ref = self._ref(password, (*where, "password"), name) if password is not None else None
            if keystore_path is None or ref is None:
                return None
            expanded = self._expand(keystore_path.value, keystore_path.path, name)
            return KeystoreSigner(self._local_path(expanded), ref) if expanded else None
        if kind == "remote":
            url = self._get(body, "url", where)
            timeout = self._get(body, "timeout_seconds", where)
            if url is None or ("timeout_seconds" in body and timeout is None):
                return None
            expanded = self._expand(url.value, url.path, name)
            if expanded is None:
                return None
            if timeout is None:
                return RemoteSigner(expanded)
            # a timeout in seconds, not an amount: a float is the right type here
            return RemoteSigner(expanded, timeout_seconds=float(timeout.value))
        return None

    def _stark_key(
        self,
        raw: dict[str, Any],
        path: NodePath,
        defaults: dict[str, Any],
        name: str,
        label: str,
        destinations: list[_Destination],
    ) -> str | None:
        own = raw.get("secrets")
        if isinstance(own, dict) and "stark_key" in own:
            source = self._get(own, "stark_key", (*path, "secrets"))
        else:
            inherited = defaults.get("secrets")
            if isinstance(inherited, dict) and "stark_key" in inherited:
                source = self._get(inherited, "stark_key", ("defaults", "secrets"))
            else:
                if not self.findings.explained((*path, "secrets")):
                    self._report(
                        path,
                        f"{label} has no secrets.stark_key",
                        "secrets: {stark_key: <vault path>} in the account, "
                        "or a template such as dydx/{name}/stark in defaults",
                        blocking=False,
                    )
                return None
        if source is None:
            return None
        return self._destination(source, name, "secrets.stark_key", destinations)

    def _destination(
        self, source: _Sourced, account: str, what: str, destinations: list[_Destination]
    ) -> str | None:
        if not isinstance(source.value, str):
            return None
        vault_path = paths.expand(source.value, account)
        if not paths.is_vault_path(vault_path):
            self._report(
                source.path,
                f"{format_path(source.path)} is not a valid Vault path for {account}",
                paths.PATH_EXPECTED,
            )
            return None
        destinations.append(_Destination(vault_path, source.path, account, what))
        return vault_path

    def _api_keys(
        self,
        raw: dict[str, Any],
        path: NodePath,
        defaults: dict[str, Any],
        name: str,
        destinations: list[_Destination],
    ) -> tuple[ApiKeySpec, ...] | None:
        own_path: NodePath = (*path, "api_keys")
        self._check_api_key_names(raw.get("api_keys"), own_path)
        merged: dict[str, _Sourced] = {}
        for items, base in (
            (defaults.get("api_keys"), ("defaults", "api_keys")),
            (raw.get("api_keys"), own_path),
        ):
            if not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                entry_path: NodePath = (*base, index)
                if not isinstance(item, dict) or self.findings.explained(entry_path):
                    return None
                key_name = item.get("name")
                if isinstance(key_name, str):
                    merged[key_name] = _Sourced(item, entry_path)  # the account's entry wins
        specs = []
        complete = True
        for key_name, entry in merged.items():
            secret = self._get(entry.value, "secret", entry.path)
            if secret is None:
                complete = False
                continue
            vault_path = self._destination(secret, name, f"api key '{key_name}'", destinations)
            if vault_path is None:
                complete = False
                continue
            specs.append(ApiKeySpec(key_name, vault_path, self.findings.doc.locate(entry.path)))
        return tuple(specs) if complete else None

    # -- cross-account checks --------------------------------------------------

    def _check_api_key_names(self, items: object, base: NodePath) -> None:
        if not isinstance(items, list):
            return
        first: dict[str, NodePath] = {}
        for index, item in enumerate(items):
            name_path: NodePath = (*base, index, "name")
            if not isinstance(item, dict) or not self._ok(name_path) or "name" not in item:
                continue
            key_name = item["name"]
            if key_name in first:
                self._report(
                    name_path,
                    f"api key '{key_name}' is listed twice in {format_path(base)} "
                    f"(first at line {self._location_line(first[key_name])})",
                    "each API key name once per account",
                )
            else:
                first[key_name] = name_path

    def _check_unique_name(
        self, raw: dict[str, Any], path: NodePath, names: dict[str, NodePath]
    ) -> None:
        name_path: NodePath = (*path, "name")
        name = raw.get("name")
        if not isinstance(name, str) or not self._ok(name_path):
            return
        if name in names:
            self._report(
                name_path,
                f"account name '{name}' is already used (line {self._location_line(names[name])})",
                "a unique name per account",
            )
        else:
            names[name] = name_path

    def _check_unique_address(
        self,
        raw: dict[str, Any],
        path: NodePath,
        addresses: dict[str, tuple[str, NodePath]],
    ) -> None:
        address_path: NodePath = (*path, "address")
        address = raw.get("address")
        if not isinstance(address, str) or not self._ok(address_path):
            return
        key = address.lower()
        if key in addresses:
            other, other_path = addresses[key]
            self._report(
                address_path,
                f"address {address} is already used by {other} "
                f"(line {self._location_line(other_path)})",
                "one account per address",
            )
        else:
            name = raw.get("name")
            addresses[key] = (
                f"account '{name}'" if isinstance(name, str) else format_path(path),
                address_path,
            )

    def _check_destinations(self, destinations: list[_Destination], state_path: str | None) -> None:
        seen: dict[str, _Destination] = {}
        reported: set[NodePath] = set()  # a template in defaults is reported once, not per account
        for dest in destinations:
            if dest.source in reported:
                continue
            if state_path and paths.is_under(dest.vault_path, state_path):
                reported.add(dest.source)
                self._report(
                    dest.source,
                    f"Vault path '{dest.vault_path}' ({dest.account}'s {dest.what}) lies under "
                    f"vault.state_path '{state_path}', where the tool keeps its locks and journal",
                    "a destination outside vault.state_path",
                )
                continue
            first = seen.get(dest.vault_path)
            if first is None:
                seen[dest.vault_path] = dest
                continue
            reported.add(dest.source)
            hint = " (put {name} in the template)" if dest.source[0] == "defaults" else ""
            self._report(
                dest.source,
                f"Vault path '{dest.vault_path}' for {dest.account}'s {dest.what} is already the "
                f"destination of {first.account}'s {first.what} "
                f"(line {self._location_line(first.source)})",
                "each secret at a path of its own" + hint,
            )
