"""Moving an instance to another host, or restoring it after a loss: `export` writes its stream and
settings as one versioned document (core/transfer_format.py) with no secret in it; `import`
recreates it from one (the app, its settings and rules, the history continued) and links it again
through the link path when told which backend.

What an export leaves out, and why (the README lists it too):
- the admin API token (`api_token` of instance.created / instance.adopted): the importing host
  makes a fresh one, recorded by the instance.imported event, so the two hosts never share one;
- the password of a dedicated source role (`source_role_password` of backend.linked /
  instance.adopted): a link on the new host makes a role and password of its own;
- the fingerprints of the backend's SECRET_KEY and of DSNs (`*_fingerprint`): short hashes, but
  of secrets, and the new link records its own;
- an adopted config's values written inline under a key named like a password, secret, token or
  key: the config reads each from a PS_* config var instead (listed in `env_required`, with the
  PS_* vars the adopted config already read with `!env`), which the operator sets on the new host;
- the backend's SECRET_KEY, its derived key and every DSN were never in the journal; commands and
  failure reasons are redacted again, and the export is refused if any value of the backend's or
  the instance's config still appears in it.
"""
from __future__ import annotations

import datetime as dt
import secrets
import socket
from typing import Iterator, Optional
from urllib.parse import urlsplit

from powersync_plugin import access, linking, source_role
from powersync_plugin.adapters.journal import SCHEMA_REVISION
from powersync_plugin.backend import DERIVED_KEYS, backend_values
from powersync_plugin.core import decisions, derive, transfer_format
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.names import check_app_name, check_existing_app_name
from powersync_plugin.core.planner import INSTANCE_PORTS, Action, Kind, Plan
from powersync_plugin.core.state import InstanceState
from powersync_plugin.lifecycle import make_instance_app
from powersync_plugin.pipeline import CommandFailed, compensate, restored_text
from powersync_plugin.read_model import summary_json
from powersync_plugin.read_side import instances_linked_to
from powersync_plugin.redact import Redactor, env_for_config_secrets
from powersync_plugin.services import Services

WITHHELD_FIELDS = ("api_token", "source_role_password", "secret_fingerprint", "source_fingerprint", "storage_fingerprint")


def export(s: Services, name: str) -> str:
    """The export document of a live instance, as text (the caller writes it to stdout)."""
    check_app_name(name)
    with s.lock(name):
        state = s.load(name)
        decisions.require_live(state)
        if state.pending_intent is not None:
            raise DomainError(
                f"Revision {state.pending_intent} of {name} has no outcome (an interrupted change): run "
                f"`dokku powersync:reconcile {name}` first, then export. Nothing written"
            )
        stored = s.journal.load(name)
        known = _known_secrets(s, state, stored)
        redactor = Redactor()
        redactor.add(*known)
        rows, withheld, env_required = _withheld_rows(stored, redactor)
        if state.storage == "uri":
            env_required.add("PS_STORAGE_SOURCE_URI")
        document = transfer_format.build(
            name, rows, state, exported_at=_now(), exported_from=socket.gethostname(), journal_schema=SCHEMA_REVISION,
            domains=s.dokku.vhosts(name) if s.dokku.app_exists(name) else [], withheld=withheld,
            env_required=sorted(env_required),
        )
        _require_no_secret(name, document, known)
    s.out.step(f"Exported {name}: {len(rows)} revisions, rules {document['settings']['rules_revision'] or '-'}")
    s.out.detail(f"Withheld (no secret leaves the host): {len(withheld)} values; see the file's \"withheld\"")
    if env_required:
        s.out.detail(f"The importing host must set: {', '.join(sorted(env_required))}")
    return transfer_format.serialize(document)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _known_secrets(s: Services, state: InstanceState, stored: list[ev.StoredEvent]) -> list[str]:
    """Every secret this host knows for the instance: its API tokens, its config's derived values
    and the PS_* values its adopted config reads, the backend's SECRET_KEY, derived key and DSN,
    and each DSN's password alone."""
    values = [str(event.payload.get(key) or "") for event in stored for key in ("api_token", "source_role_password")]
    if s.dokku.app_exists(state.name):
        env = s.dokku.config(state.name)
        wanted = {*DERIVED_KEYS, "PS_API_TOKEN", "DATABASE_URL", *_env_refs(state.config_extras)}
        values += [env.get(key, "") for key in wanted]
    if state.link is not None and s.dokku.app_exists(state.link.backend):
        backend_env = s.dokku.config(state.link.backend)
        secret_key = backend_env.get("SECRET_KEY", "")
        values += [secret_key, derive.secret_key_b64(secret_key) if secret_key else "", backend_env.get("DATABASE_URL", "")]
    values += [_password(value) for value in values]
    return sorted({value for value in values if value and len(value) >= 6})  # the Redactor's threshold


def _password(value: str) -> str:
    try:
        return urlsplit(value).password or "" if "://" in value else ""
    except ValueError:
        return ""


def _env_refs(node) -> Iterator[str]:
    if isinstance(node, dict):
        if set(node) == {"$env"}:
            yield str(node["$env"])
            return
        for value in node.values():
            yield from _env_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _env_refs(value)


def _withheld_rows(stored: list[ev.StoredEvent], redactor: Redactor) -> tuple[list[dict], list[str], set[str]]:
    rows, withheld, env_required = [], [], set()
    for event in stored:
        row = transfer_format.event_row(event)
        payload = row["payload"]
        where = f"revision {event.version} ({event.type})"
        for key in WITHHELD_FIELDS:
            if payload.get(key):
                payload[key] = transfer_format.WITHHELD
                withheld.append(f"{where} {key}")
        if isinstance(payload.get("extras"), dict):
            payload["extras"], moved = env_for_config_secrets(payload["extras"])
            for path, env_name in moved:
                withheld.append(f"{where} extras.{path} (the config reads it from {env_name})")
            env_required.update(_env_refs(payload["extras"]))
        if isinstance(payload.get("reason"), str):
            payload["reason"] = redactor.text(payload["reason"])
        row["command"] = redactor.text(row["command"])
        rows.append(row)
    return rows, withheld, env_required


def _strings(node) -> Iterator[str]:
    """Every string in a JSON-safe value (keys included)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _require_no_secret(name: str, document: dict, known: list[str]) -> None:
    """The last guard: no value of a secret this host knows appears anywhere in the file."""
    found = set()
    for row in document["events"]:
        if any(secret in text for text in _strings(row) for secret in known):
            found.add(str(row["version"]))
    rest = {key: value for key, value in document.items() if key != "events"}
    if any(secret in text for text in _strings(rest) for secret in known):
        found.add("the settings")
    if found:
        raise DomainError(
            f"The export of {name} would carry a secret (a value of its own or its backend's config) in revision(s) "
            f"{', '.join(sorted(found))}: nothing written. `dokku powersync:history {name} --show REV` shows where "
            "(masked). The journal keeps every revision, so the value stays in the history: change that secret "
            "(a new SECRET_KEY on the backend re-derives the instance), then export"
        )


def import_instance(s: Services, text: str, backend: Optional[str], no_restart: bool, dry_run: bool = False) -> dict:
    """Recreate the instance of an export on this host; link it to `backend` when given. Returns
    what was done (the CLI renders it)."""
    exported = transfer_format.parse(text)
    name, state, count = exported.name, exported.state, len(exported.events)
    check_app_name(name)
    if backend is not None:
        check_existing_app_name(backend)
        # before anything is made or told about the backend (whether it exists, has a key, is linked)
        access.require_app(s, "powersync:link", backend, f"linking copies {backend}'s SECRET_KEY into {name}")
    result = {
        "name": name, "revisions": count, "imported_revision": count + 1, "exported_from": exported.exported_from,
        "exported_at": exported.exported_at, "format_version": exported.format_version,
        "env_required": list(exported.env_required), "linked_backend": None, "dry_run": dry_run,
    }
    with s.lock(name):
        _require_absent(s, name)
        if backend is not None:
            _require_linkable(s, exported, backend)
        if dry_run:
            s.print_plan(_import_plan(exported, backend))
            return result
        token = secrets.token_urlsafe(32)
        s.out.redactor.add(token)
        s.out.header(f"Importing PowerSync instance {name} (exported from {exported.exported_from} at {exported.exported_at})")
        _restore(s, exported, token)
    s.out.step(f"{name} restored: app, settings, rules {exported.settings.get('rules_revision') or '-'}, revisions 1..{count}")
    s.out.detail(f"Revision {count + 1} records the import; the instance has a new API token and is not linked yet")
    if exported.env_required:
        s.out.detail(
            f"Its config reads {', '.join(exported.env_required)}, which an export never carries: "
            f"`dokku config:set --no-restart {name} KEY=VALUE` for each, before linking"
        )
    if backend is None:
        s.out.step(f"Next: dokku powersync:link {name} <backend-app>")
        return result
    try:
        linking.link(s, name, backend, no_restart, state.kid, tuple(state.audience), False, False, role_mode(state))
    except DomainError as exc:
        raise CommandFailed(
            f"{name} was imported (app, settings, rules and revisions 1..{count}, the import as revision {count + 1}), "
            f"but linking it to {backend} failed:\n{exc}\nThe instance stays, unlinked: fix the cause and run "
            f"`dokku powersync:link {name} {backend}`, or remove it with `dokku powersync:destroy {name} --force`"
        ) from None
    result["linked_backend"] = backend
    return result


def role_mode(exported_state: InstanceState) -> str:
    """The source role the new link uses: a dedicated one when the exported instance's link had one."""
    link = exported_state.link
    return source_role.DEDICATED if link is not None and link.source_role else source_role.SUPERUSER


def _import_plan(exported: transfer_format.ExportFile, backend: Optional[str]) -> Plan:
    name, count = exported.name, len(exported.events)
    actions = [Action(Kind.CREATE_APP, name)]
    if exported.domains:
        actions.append(Action(Kind.SET_DOMAINS, name, detail=" ".join(exported.domains)))
    actions += [
        Action(Kind.ADD_PORTS, name, detail=" ".join(INSTANCE_PORTS)),
        Action(Kind.SET_MEMORY, name, detail=f"{exported.state.memory_mb}m"),
        Action(Kind.SET_CONFIG, name, keys=("NODE_OPTIONS", "PS_API_TOKEN")),
        Action(Kind.RECORD_HISTORY, name, detail=f"revisions 1..{count} as exported, the import as revision {count + 1}"),
    ]
    if backend is not None:
        role = f", --source-role {source_role.DEDICATED}" if role_mode(exported.state) == source_role.DEDICATED else ""
        actions.append(Action(Kind.LINK_BACKEND, name, detail=f"{backend}{role} (`powersync:link --dry-run` plans it once imported)"))
    return Plan(tuple(actions))


def _require_absent(s: Services, name: str) -> None:
    current = s.load(name)
    if current.live:
        raise DomainError(
            f"Instance {name} already exists on this host: nothing changed. An import never replaces an instance; "
            f"`dokku powersync:info {name}` shows it"
        )
    if current.version:
        raise DomainError(
            f"The journal of this host holds the history of an earlier instance named {name} "
            f"({'destroyed' if current.destroyed else 'renamed'}); histories cannot be merged: nothing changed"
        )
    if s.dokku.app_exists(name):
        raise DomainError(
            f"App {name} already exists on this host and is not a PowerSync instance: nothing changed. "
            "Import on a host without it"
        )


def _require_linkable(s: Services, exported: transfer_format.ExportFile, backend: str) -> None:
    """What makes --link fail for certain, refused before anything is made (the link path checks
    the rest and undoes itself)."""
    name = exported.name
    if backend == name:
        raise DomainError("An instance cannot be linked to itself: name the backend app that holds SECRET_KEY. Nothing changed")
    if exported.env_required:
        raise DomainError(
            f"{name}'s config reads {', '.join(exported.env_required)}, which an export never carries: nothing changed. "
            f"Import without --link, `dokku config:set --no-restart {name} KEY=VALUE` for each, "
            f"then `dokku powersync:link {name} {backend}`"
        )
    if not s.dokku.app_exists(backend):
        raise DomainError(f"App {backend} does not exist on this host: nothing changed. Create it, or import without --link")
    backend_values(backend, s.dokku.config(backend))
    others = instances_linked_to(backend)
    if others:
        raise DomainError(
            f"{backend} is already linked to PowerSync instance {others[0]}: nothing changed (one instance per backend)"
        )


def _restore(s: Services, exported: transfer_format.ExportFile, token: str) -> None:
    """The app, then the journal in one transaction; a failure of either removes the app, so a
    failed restore leaves nothing (the journal transaction writes all or nothing)."""
    name, state = exported.name, exported.state
    imported = ev.NewEvent(ev.INSTANCE_IMPORTED, {
        "from_host": exported.exported_from, "exported_at": exported.exported_at,
        "format_version": exported.format_version, "api_token": token, "withheld": len(exported.withheld),
    })
    env = {"NODE_OPTIONS": f"--max-old-space-size={decisions.node_heap_megabytes(state.memory_mb)}", "PS_API_TOKEN": token}
    try:
        s.out.step(f"Creating app {name}" + (f" ({', '.join(exported.domains)})" if exported.domains else ""))
        make_instance_app(s, name, state.memory_mb, env, exported.domains)
        rows = [transfer_format.event_row(event) for event in exported.events]
        s.journal.import_stream(name, rows, imported, s.actor, s.command)
    except DomainError as exc:
        restored = compensate(s, lambda: s.dokku.app_exists(name) and s.dokku.apps_destroy(name))
        raise CommandFailed(
            f"Importing {name} failed: {exc}\n" + restored_text(restored, f"app {name} removed; nothing recorded")
        ) from None
    current = s.load(name)
    s.journal.save_summary(name, current.version, summary_json(current))
