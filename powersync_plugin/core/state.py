"""Instance state: what the journal says an instance is, folded from its events."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class RulesRevision:
    number: int  # r1, r2, ...: counts rules.set events, never renumbered
    version: int  # the stream version of the rules.set event
    content: str
    digest: str
    description: str
    rolled_back_to: Optional[int] = None


@dataclass(frozen=True)
class BackendLink:
    backend: str
    postgres_service: Optional[str]
    source_fingerprint: str
    secret_fingerprint: str
    audience: tuple[str, ...]
    kid: Optional[str]
    url: Optional[str]
    version: int
    source_sslmode: str = "disable"
    storage_sslmode: str = "disable"
    # `--source-role dedicated`: the instance replicates as this role of its own (None: as the
    # backend's DSN user); its password lives in the 0600 journal, like the API token
    source_role: Optional[str] = None
    source_role_password: str = ""


@dataclass(frozen=True)
class Outcome:
    status: str  # applied | failed
    reason: str = ""
    restored: bool = False


@dataclass(frozen=True)
class InstanceState:
    name: str
    version: int = 0
    created: bool = False
    destroyed: bool = False
    image: str = ""
    image_version: str = ""
    memory_mb: int = 0
    storage: str = "separate-database"
    storage_database: Optional[str] = None
    api_token: str = ""
    slot_prefix: str = ""
    audience: tuple[str, ...] = ()
    kid: Optional[str] = None
    rules_history: tuple[RulesRevision, ...] = ()
    current_rules: Optional[RulesRevision] = None
    # What the service was last seen doing with the rules (rules.activated / activation_failed):
    # the revision it served, and why the current revision could not become active.
    rules_active: Optional[int] = None
    rules_failure: str = ""
    link: Optional[BackendLink] = None
    last_postgres_service: Optional[str] = None
    last_source_role: Optional[str] = None  # the dedicated role of the last link: dropped at unlink/destroy
    slots_kept: bool = False
    auto_rotate: bool = True
    # `powersync:set NAME telemetry on|off`; None: never set, the adopted config or the service's
    # own default (sharing on) decides, and the plugin renders no `telemetry` key of its own
    telemetry: Optional[bool] = None
    telemetry_undo: dict = field(default_factory=dict)  # setting version -> telemetry before it
    # `powersync:set` service settings (core/service_settings.py); None: not set, upstream default
    log_level: Optional[str] = None
    metrics_port: Optional[int] = None
    compact_schedule: Optional[str] = None
    settings_undo: dict = field(default_factory=dict)  # setting version -> (field, value before it)
    rotation_undo: dict = field(default_factory=dict)  # rotation version -> link before it
    upgrade_undo: dict = field(default_factory=dict)  # upgrade version -> (image, version, digest)
    image_digest: Optional[str] = None
    adopted_from: Optional[str] = None
    config_extras: dict = field(default_factory=dict)  # adopted config keys the plugin does not model (JSON-safe)
    cleanup_keys: tuple[str, ...] = ()  # leftovers the first managed publish removes
    cleanup_mounts: tuple[str, ...] = ()
    managed_config: bool = True  # False from adoption until the plugin first publishes its own config
    stale_cause: Optional[str] = None  # set by backend.changed, cleared by a successful rotation
    renamed_to: Optional[str] = None  # this stream ended with `apps:rename`: the instance lives on as that
    outcomes: dict = field(default_factory=dict)  # intent version -> Outcome
    intents: tuple[tuple[int, str], ...] = ()  # (version, type) of every intent, in order

    @property
    def live(self) -> bool:
        return self.created and not self.destroyed and self.renamed_to is None

    @property
    def pending_intent(self) -> Optional[int]:
        """The latest intent, when it has no recorded outcome (a crash between append and apply).

        Rules set while no backend is linked are only stored (published at link): not pending.
        """
        if not self.intents:
            return None
        version, type_ = self.intents[-1]
        if version in self.outcomes or type_ in ("setting.changed",) or (type_ == "rules.set" and self.link is None):
            return None
        return version

    @property
    def rules_activation(self) -> str:
        """active | deploying | failed | stored (not linked) | "" (no rules, or never observed)."""
        current = self.current_rules
        if current is None:
            return ""
        if self.rules_active == current.number:
            return "active"
        if self.rules_failure:
            return "failed"
        if self.link is None:
            return "stored"
        return "deploying" if self.outcomes.get(current.version) is not None else ""

    def rules_revision(self, number: int) -> Optional[RulesRevision]:
        for revision in self.rules_history:
            if revision.number == number:
                return revision
        return None
