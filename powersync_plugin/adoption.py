"""Adoption: a hand-made PowerSync app becomes the first events of a stream, recorded from what
is observed. Nothing is written to the app and nothing restarts; the first managed change does."""
from __future__ import annotations

import base64
import secrets
from typing import Optional

from powersync_plugin import source_role
from powersync_plugin.backend import backend_values, linked_service
from powersync_plugin.core import adoption as hand_made, config_render, decisions, derive
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import DomainError
from powersync_plugin.core.names import check_existing_app_name
from powersync_plugin.pipeline import changing, commit
from powersync_plugin.services import Services


def adopt(s: Services, name: str, backend: Optional[str], dry_run: bool, role_mode: str = source_role.SUPERUSER) -> None:
    check_existing_app_name(name, "app name")
    # not an instance yet, so no change of its to finish: only what runs is recorded
    with changing(s, name, dry_run, finish_interrupted=False) as state:
        if state.live:
            raise DomainError(f"{name} is already managed by dokku-powersync (`dokku powersync:info {name}`)")
        if not s.dokku.app_exists(name):
            raise DomainError(f"App {name} does not exist: nothing to adopt")
        env = s.dokku.config(name)
        s.out.redactor.add(*env.values())
        container = s.docker.web_container(name)
        if container is None or not container.running:
            raise DomainError(f"{name} has no running web container: adopt takes over a running deployment")
        config_text = _running_config(s, name, env, container.id)
        rules_path = _rules_file_path(env, config_text)
        rules_file = s.docker.read_file(container.id, rules_path) if rules_path else None
        if rules_path and rules_file is None:
            raise DomainError(f"{name}'s rules file {rules_path} (sync_config.path) cannot be read in its container")
        parsed = hand_made.parse_config(config_text, rules_file)
        probe = s.docker.http(container.id, "GET", "/probes/readiness", port=hand_made.port_of(config_text))
        if not (probe.ok and isinstance(probe.json(), dict) and "ready" in probe.json()):
            raise DomainError(f"{name} does not answer PowerSync's /probes/readiness: is it running PowerSync?")
        image, image_version, digest = _adopted_image(s, s.dokku.source_image(name))
        raw_source = env.get("PS_DATA_SOURCE_URI")
        source_uri = derive.normalise_source_uri(raw_source)[0] if raw_source else ""
        # the instance itself is linked to its source's dokku-postgres service, if it has one
        service = linked_service(s, name, source_uri) if source_uri else None
        backend = backend or _find_backend(s, name, service)
        check_existing_app_name(backend)
        if not s.dokku.app_exists(backend):
            raise DomainError(f"Backend app {backend} does not exist")
        backend_env = s.dokku.config(backend)
        secret_key, _ = backend_values(backend, backend_env)
        s.out.redactor.add(secret_key)
        if derive.secret_key_b64(secret_key) != env.get("PS_SECRET_KEY_B64"):
            raise DomainError(
                f"Inconsistent: {backend}'s SECRET_KEY does not derive {name}'s PS_SECRET_KEY_B64 "
                "(base64url, no padding): fix the deployment or name the right --backend"
            )
        if not source_uri:
            raise DomainError(f"Inconsistent: {name} has no PS_DATA_SOURCE_URI")
        if service is not None:
            linked = env.get("DATABASE_URL")
            if not linked or derive.normalise_source_uri(linked)[0] != source_uri:
                raise DomainError(f"Inconsistent: PS_DATA_SOURCE_URI of {name} does not match the DATABASE_URL of its link")
        memory_mb = container.memory_bytes // (1024 * 1024) or 400
        # The config mount of the older layout (Jeeves kept it at /config, inert once the config
        # moved to POWERSYNC_CONFIG_B64); other mounts are the operator's and stay.
        config_dirs = {"/config", env.get("POWERSYNC_CONFIG_PATH", "").rsplit("/", 1)[0]} - {""}
        mounts = tuple(m for m in s.dokku.storage_mounts(name) if m.rsplit(":", 1)[-1] in config_dirs)
        cleanup = tuple(hand_made.leftover_keys(env, parsed.referenced_env))
        payload = {
            "adopted_from": name, "image": image, "image_version": image_version, "digest": digest,
            "memory_mb": memory_mb, "storage": parsed.storage, "api_token": secrets.token_urlsafe(32),
            "slot_prefix": parsed.slot_prefix, "rules": parsed.rules, "rules_digest": derive.rules_digest(parsed.rules),
            "backend": backend, "postgres_service": service, "source_fingerprint": derive.fingerprint(source_uri),
            "secret_fingerprint": derive.fingerprint(secret_key), "audience": list(parsed.audience), "kid": parsed.kid,
            "url": backend_env.get("POWERSYNC_URL"), "source_sslmode": parsed.source_sslmode,
            "storage_sslmode": parsed.storage_sslmode, "extras": config_render.to_json_safe(parsed.extras),
            "cleanup_keys": list(cleanup), "cleanup_mounts": list(mounts),
            **source_role.role_payload(s, name, role_mode, backend, service),
        }
        s.out.header(f"Adopting {name} (linked to {backend})")
        s.out.detail(f"Image: {image}:{image_version} ({digest[:19]})")
        s.out.detail(f"Rules: {len(parsed.rules.encode())} bytes, kept byte for byte as r1")
        s.out.detail(f"Auth: audience {', '.join(parsed.audience)}, kid {parsed.kid or 'none'}; storage {parsed.storage}")
        if parsed.other_key_ids:
            s.out.detail(
                f"Other JWKS keys kept as they are: {', '.join(parsed.other_key_ids)} "
                f"(their variables {', '.join(sorted(parsed.referenced_env))} too)"
            )
        s.out.detail(f"Slots: prefix {parsed.slot_prefix} kept, so replication continues on the same slot")
        s.out.step("The first managed change (set-rules, rotate, upgrade, reconcile) will, in one restart:")
        s.out.detail(f"deploy the derived image of {image}:{image_version} (readiness-gated restarts)")
        s.out.detail("publish the plugin-rendered config as POWERSYNC_CONFIG_B64 (same rules bytes)")
        if rules_path:
            s.out.detail(f"carry the rules inline instead of in {rules_path} (the file is no longer read)")
        s.out.detail("add PS_API_TOKEN and api.tokens (the admin API the plugin uses)")
        if role_mode == source_role.DEDICATED:
            s.out.detail(
                f"replicate as its own role {payload['source_role_name']} (created then: LOGIN REPLICATION, SELECT on "
                "the publication's tables, owner of its storage) instead of the DSN user of PS_DATA_SOURCE_URI"
            )
        for key in cleanup:
            s.out.detail(f"remove {key}")
        for mount in mounts:
            s.out.detail(f"unmount the inert storage mount {mount}")
        if dry_run:
            s.out.step("Dry run: nothing recorded")
            return
        commit(s, state, [ev.NewEvent(ev.INSTANCE_ADOPTED, payload)])
        s.out.step(f"{name} adopted: nothing was written to it and nothing restarted")


def _rules_file_path(env: dict[str, str], config_text: str) -> Optional[str]:
    """The rules file behind sync_config.path, as an absolute path in the container: relative
    to the config file, or (config from POWERSYNC_CONFIG_B64) to the working directory, which
    is also where `docker exec` starts."""
    path = hand_made.rules_path(config_text)
    if path is None or path.startswith("/") or env.get("POWERSYNC_CONFIG_B64"):
        return path
    config_dir = env.get("POWERSYNC_CONFIG_PATH", "").rsplit("/", 1)[0]
    return f"{config_dir}/{path}" if config_dir else path


def _running_config(s: Services, name: str, env: dict[str, str], container_id: str) -> str:
    if env.get("POWERSYNC_CONFIG_B64"):
        try:
            return base64.b64decode(env["POWERSYNC_CONFIG_B64"]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise DomainError(f"POWERSYNC_CONFIG_B64 of {name} is not base64 of a UTF-8 config") from None
    path = env.get("POWERSYNC_CONFIG_PATH")
    if path:
        text = s.docker.read_file(container_id, path)
        if text is None:
            raise DomainError(f"{name}'s POWERSYNC_CONFIG_PATH {path} cannot be read in its container")
        return text
    raise DomainError(f"{name} is not running PowerSync from config vars (no POWERSYNC_CONFIG_B64 or POWERSYNC_CONFIG_PATH)")


def _adopted_image(s: Services, source_image: str) -> tuple[str, str, str]:
    reference, _, pinned_digest = source_image.partition("@")
    repository, _, version = reference.rpartition(":")
    if not repository or not decisions.is_exact_version(version):
        raise DomainError(
            f"The deployed image {source_image or '(unknown)'} is not pinned to an exact X.Y.Z version: "
            "redeploy a pinned image first"
        )
    found = s.docker.image(reference)
    digest = pinned_digest or (found.digest if found else "unknown")
    return repository, version, digest


def _find_backend(s: Services, name: str, service: Optional[str]) -> str:
    candidates = [app for app in (s.dokku.postgres_links(service) if service else []) if app != name]
    with_secret = [app for app in candidates if "SECRET_KEY" in s.dokku.config_keys(app)]
    if len(with_secret) == 1:
        return with_secret[0]
    raise DomainError(
        f"Cannot tell which app is {name}'s backend ({', '.join(with_secret) or 'none found'}): pass --backend <app>"
    )
