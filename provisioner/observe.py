"""Observe: read-only facts per account from Vault, dYdX and the chain, gathered concurrently.

Nothing is written here. A converged account costs one Vault read per
destination and one dYdX request (listing its API keys with stored
credentials); chain reads for all accounts go out as JSON-RPC batches and the
deposit events are fetched once per run.

Apply looks again under its locks, passing what it saw before as ``known``: an
account whose Vault records (versions, fields, journal) are exactly as before has
had no run of this tool at it in between, so its dYdX facts are taken over instead
of asked for twice, which would spend the rate-limit budget its onboarding needs.
Vault and the chain are read again; each step still checks dYdX right before it acts.

Whether an account's signer is checked (resolving its key) is the caller's call, made
from the facts (``check_signer``): the planner decides what has work, observe only looks.

An account dYdX knows whose STARK key is not in Vault (onboarded in the web app) has its key
derived in memory from its signer (``derive``): one "dYdX STARK Key" signature, made twice
to refuse a signer that is not deterministic, and the default API key's signature to read
its position. Nothing is stored, nothing is sent but that read; the public key is what the
chain is asked about, so the plan sees the registration and the deposits that exist. Local
signers derive by default; remote ones, where a signature may wait for a person, only when
asked (``plan --derive``); an untrusted plan derives nothing (provisioner/derivation.py).

An untrusted plan (``conn.untrusted``: a pull request's manifest) reads Vault metadata
only (what apply records there, see ``content_metadata``), asks dYdX only public
questions, resolves no signer and reads no journal entry; what it could not check is
named in ``WorldFacts.not_checked``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from provisioner.clients.dydx import ApiCredentials, DydxError
from provisioner.clients.vault import SecretRecord, VaultError
from provisioner.connections import Connections
from provisioner.derivation import Derive, derive_stark, signer_for
from provisioner.facts import (
    AccountFacts,
    ApiKeyIntentFact,
    DerivedStarkKey,
    JournalEntry,
    WorldFacts,
)
from provisioner.journal import Journal, KeyIntent, key_orphans, unexpected_keys
from provisioner.manifest.model import AccountSpec
from provisioner.observe_chain import (
    Partial,
    gather,
    int_or_none,
    with_chain_facts,
)
from provisioner.records import (
    API_FIELDS,
    API_KEY,
    DEFAULT_API_KEY,
    POSITION_ID,
    STARK_FIELDS,
    STARK_PUBLIC_KEY,
    api_credential_fields,
)
from provisioner.secrets import SecretError
from provisioner.signers.base import SignerError

DEFAULT_PARALLELISM = 64  # threads at most: each pool makes only as many as it has accounts
__all__ = ["DEFAULT_PARALLELISM", "Derive", "SignerCheck", "no_signer", "observe", "unstored_keys"]

SignerCheck = Callable[[AccountSpec, AccountFacts], bool]
"""Given what was seen, whether this account's signer must be resolved and checked."""


def no_signer(_spec: AccountSpec, _facts: AccountFacts) -> bool:
    """Check no signer: what ``status`` sees needs none."""
    return False


def observe(
    conn: Connections,
    accounts: Sequence[AccountSpec],
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    known: WorldFacts | None = None,
    check_signer: SignerCheck = no_signer,
    derive: Derive = Derive.LOCAL,
    clock: Callable[[], float] = time.time,
) -> WorldFacts:
    """``known``: facts of an earlier look in this run (see the module docstring); ``clock``:
    the wall clock the facts are stamped with (the planner's "now" for API key ages)."""
    if conn.untrusted:
        return _observe_untrusted(conn, accounts, parallelism, check_signer, clock)
    network = conn.manifest.network
    # before the deposit events (``gather`` scans them): one mined and forgotten in between
    # is then in the events, never in neither
    journal = Journal(conn.vault, conn.manifest.vault.state_path).load(
        conn.chain, ((s.name, s.address) for s in accounts), network.chain_id, network.confirmations
    )
    before = {a.name: a for a in known.accounts} if known is not None else {}
    partials, chain_state = gather(
        conn,
        lambda s: _observe_offchain(
            conn, s, *journal.get(s.name, ((), ())), before.get(s.name), derive
        ),
        accounts,
        parallelism,
    )
    facts = [
        _with_derived_default(p, f)
        for p, f in zip(
            partials, with_chain_facts(conn, partials, chain_state, clock()), strict=True
        )
    ]
    # A signer resolved while deriving (or that failed to be) is not resolved again, unless the
    # default key's id is needed and deriving did not recover it.
    made = {
        p.spec.name
        for p, f in zip(partials, facts, strict=True)
        if p.signer_error or (p.signer_made and not _needs_default(f))
    }
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        checked = list(
            pool.map(
                lambda pair: (
                    _check_signer(conn, pair[0], pair[1], derive)
                    if pair[0].name not in made and check_signer(*pair)
                    else pair[1]
                ),
                zip(accounts, facts, strict=True),
            )
        )
    return WorldFacts(chain_id=conn.manifest.network.chain_id, accounts=tuple(checked))


def _observe_untrusted(
    conn: Connections,
    accounts: Sequence[AccountSpec],
    parallelism: int,
    has_work: SignerCheck,
    clock: Callable[[], float],
) -> WorldFacts:
    """Metadata, public dYdX reads and the chain: nothing that needs a credential or a secret.
    ``has_work``: the accounts whose signer a trusted run would check (named as not checked)."""
    undescribed: list[str] = []

    def offchain(spec: AccountSpec) -> Partial:
        stark = conn.vault.read_metadata(spec.stark_key_path)
        api = {key.name: conn.vault.read_metadata(key.secret_path) for key in spec.api_keys}
        for record in (stark, *api.values()):
            if record.entry.exists and record.entry.is_ours(spec.name) and not record.described:
                undescribed.append(record.entry.path)
        exists = conn.dydx.user_exists(spec.address)
        stark_public = (
            int_or_none(stark.entry.get(STARK_PUBLIC_KEY))
            if stark.entry.exists and stark.entry.fields >= STARK_FIELDS
            else None
        )
        return Partial(
            spec,
            SecretRecord(entry=stark.entry, data={}),
            {name: SecretRecord(entry=r.entry, data={}) for name, r in api.items()},
            exists,
            None,
            int_or_none(stark.entry.get(POSITION_ID)),
            stark_public,
            (),
            (),
            # no signer, so no key is derived: what an existing account has is not known
            stark_unknown=stark_public is None and exists,
        )

    partials, chain_state = gather(conn, offchain, accounts, parallelism)
    facts = with_chain_facts(conn, partials, chain_state, clock())
    selected = {a.name for a in accounts}
    journaled = sorted(
        set(Journal(conn.vault, conn.manifest.vault.state_path).accounts()) & selected
    )
    not_checked = [
        "the API keys dYdX lists for each account: listing them needs the account's API "
        "credentials, which an untrusted plan does not read",
    ]
    with_work = [
        spec.name
        for spec, fact in zip(accounts, facts, strict=True)
        if spec.signer is not None and has_work(spec, fact)
    ]
    if with_work:
        not_checked.append(
            "the signers of the accounts with work ("
            + ", ".join(with_work)
            + "): resolving one reads a private key or calls a remote signer"
        )
    if journaled:
        not_checked.append(
            "what an interrupted apply left in the journal of " + ", ".join(journaled)
        )
    for path in sorted(undescribed):
        not_checked.append(
            f"the contents of {path}: its current version is not the one apply recorded "
            "(written behind its back, or before it kept records)"
        )
    return WorldFacts(
        chain_id=conn.manifest.network.chain_id,
        accounts=tuple(facts),
        not_checked=tuple(not_checked),
    )


def _observe_offchain(
    conn: Connections,
    spec: AccountSpec,
    journal: tuple[JournalEntry, ...],
    intents: tuple[KeyIntent, ...],
    known: AccountFacts | None = None,
    derive: Derive = Derive.LOCAL,
) -> Partial:
    stark = conn.vault.read(spec.stark_key_path)
    api = _read_api_secrets(conn, spec, known)
    unchanged = known is not None and _vault_unchanged(known, stark, api, journal, intents)
    if known is not None and unchanged:
        user_exists, dydx_keys = known.user_exists, known.dydx_api_keys
    else:
        user_exists, dydx_keys = _observe_dydx(conn, spec, api)
    stark_public = (
        int_or_none(stark.data.get(STARK_PUBLIC_KEY))
        if stark.entry.exists and stark.entry.fields >= STARK_FIELDS
        else None
    )
    position_id = int_or_none(stark.data.get(POSITION_ID))
    derived: DerivedStarkKey | None = None
    signer_error: str | None = None
    default_key_id: str | None = None
    made = False
    # Without a dYdX user nothing can be registered or deposited (registration needs dYdX's
    # signature): a fresh account's plan is exact with no key at all, and nothing is signed.
    if stark_public is None and user_exists is not False:
        if known is not None and unchanged and known.derived_stark_key is not None:
            derived = known.derived_stark_key  # the same signer gives the same key
        elif user_exists and derive.covers(spec):
            found = derive_stark(conn, spec, api)
            derived, signer_error, default_key_id = found.key, found.error, found.default_key_id
            made = True
    return Partial(
        spec,
        stark,
        api,
        user_exists,
        dydx_keys,
        position_id,
        stark_public,
        journal,
        tuple(_intent_fact(spec, i, api, dydx_keys) for i in intents),
        derived,
        stark_unknown=stark_public is None
        and user_exists is not False
        and (derived is None or derived.position_id is None),
        signer_error=signer_error,
        signer_made=made,
        default_key_id=default_key_id,
    )


def _with_derived_default(p: Partial, facts: AccountFacts) -> AccountFacts:
    """The default key's id recovered while deriving, where money's rule wants it (a key dYdX
    lists that no destination holds: see ``_check_signer``)."""
    if p.default_key_id and facts.user_exists and unstored_keys(facts):
        return replace(facts, default_key_id=p.default_key_id)
    return facts


def _needs_default(facts: AccountFacts) -> bool:
    return bool(facts.user_exists and unstored_keys(facts) and facts.default_key_id is None)


def _read_api_secrets(
    conn: Connections, spec: AccountSpec, known: AccountFacts | None
) -> dict[str, SecretRecord]:
    """One read per API key destination; but looking again (``known``), destinations that were
    never written share one listing per folder: a fresh account with 10 named keys costs 1
    request here instead of 11 (a path listed, or a folder that cannot be listed, is read)."""
    never_written = {
        entry.path: entry
        for _, entry in (known.api_secrets if known is not None else ())
        if entry.version == 0 and entry.managed_by is None
    }
    folders: dict[str, list[str]] = {}
    for path in never_written:
        folder, _, _ = path.rpartition("/")
        folders.setdefault(folder, []).append(path)
    listed: dict[str, set[str]] = {}
    for folder, paths in folders.items():
        if folder and len(paths) > 1:
            try:
                names = conn.vault.list_state(folder)
            except VaultError:  # a policy without "list": read them one by one
                continue
            listed[folder] = {name.rstrip("/") for name in names}
    records = {}
    for key in spec.api_keys:
        folder, _, leaf = key.secret_path.rpartition("/")
        if key.secret_path in never_written and folder in listed and leaf not in listed[folder]:
            records[key.name] = SecretRecord(entry=never_written[key.secret_path], data={})
        else:
            records[key.name] = conn.vault.read(key.secret_path)
    return records


def _vault_unchanged(
    known: AccountFacts,
    stark: SecretRecord,
    api: dict[str, SecretRecord],
    journal: tuple[JournalEntry, ...],
    intents: tuple[KeyIntent, ...],
) -> bool:
    """Vault shows the account exactly as ``known`` saw it, with no API key creation pending."""
    return (
        not intents
        and not known.api_key_intents
        and known.stark_secret == stark.entry
        and known.api_secrets == tuple((name, rec.entry) for name, rec in api.items())
        and known.journal == journal
    )


def _observe_dydx(
    conn: Connections, spec: AccountSpec, api: dict[str, SecretRecord]
) -> tuple[bool | None, frozenset[str] | None]:
    """Whether dYdX knows the user, and the API keys it lists (None when no stored key works)."""
    user_exists: bool | None = None
    dydx_keys: frozenset[str] | None = None
    for name in sorted(api, key=lambda n: n != DEFAULT_API_KEY):  # the default key first
        rec = api[name]
        if not (rec.entry.is_ours(spec.name) and rec.entry.fields >= API_FIELDS):
            continue
        key, secret, passphrase = api_credential_fields(rec.data)
        creds = ApiCredentials(key=key, secret=secret, passphrase=passphrase)
        try:
            dydx_keys = conn.dydx.list_api_keys(spec.address, creds)
            user_exists = True
            break
        except DydxError as exc:
            if exc.status not in (401, 403, 404):
                raise
    if user_exists is None:
        user_exists = conn.dydx.user_exists(spec.address)
        if user_exists and any(rec.entry.exists for rec in api.values()):
            dydx_keys = frozenset()  # every stored key was refused: they are gone at dYdX
    return user_exists, dydx_keys


def _intent_fact(
    spec: AccountSpec,
    intent: KeyIntent,
    api: dict[str, SecretRecord],
    listed: frozenset[str] | None,
) -> ApiKeyIntentFact:
    """What an interrupted API key creation left: the keys dYdX has whose secret Vault lacks."""
    if listed is None:
        return ApiKeyIntentFact(intent.name, intent.created, None)
    ours = {n: r for n, r in api.items() if r.entry.is_ours(spec.name) and r.data.get(API_KEY)}
    stored = {r.data[API_KEY] for r in ours.values()}
    orphans = key_orphans(intent, listed, stored)
    unexpected = unexpected_keys(intent, listed, stored)
    return ApiKeyIntentFact(
        intent.name, intent.created, tuple(sorted(orphans)), tuple(sorted(unexpected))
    )


def _check_signer(
    conn: Connections, spec: AccountSpec, facts: AccountFacts, derive: Derive
) -> AccountFacts:
    """``signer_error`` set when the account's signer cannot be made for its address. When dYdX
    lists a key that no destination holds, the default API key's id is derived too (a
    signature, no request): the only source of that id the planner trusts. Only from signers
    ``derive`` covers: a remote one may need a person to approve the signature, so without
    ``--derive`` the id stays unknown (and the planner blocks what would need it)."""
    if spec.signer is None:
        return facts
    try:
        signer = signer_for(conn, spec)
    except (SignerError, SecretError) as exc:  # this account is blocked, the others go on
        return replace(facts, signer_error=conn.redactor.redact(str(exc)))
    if not facts.user_exists or not unstored_keys(facts):
        return facts  # every key dYdX lists is in a destination: nothing the default may hide as
    if not derive.covers(spec):
        return facts
    try:
        default = conn.dydx.recover_default_credentials(signer).key
    except (SignerError, DydxError) as exc:
        return replace(facts, signer_error=conn.redactor.redact(str(exc)))
    return replace(facts, default_key_id=default)


def unstored_keys(facts: AccountFacts) -> bool:
    """dYdX lists a key no destination holds (maybe the default key, under another's name)."""
    if not facts.dydx_api_keys:
        return False
    stored = {e.get(API_KEY) for _, e in facts.api_secrets if e.exists}
    return bool(facts.dydx_api_keys - stored)
