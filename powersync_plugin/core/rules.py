"""Local checks on sync rules before anything is written.

The service's own parser (with the live source schema) has the last word through the admin API's
validate endpoint; these checks refuse what is certainly wrong, with line numbers, without it.
"""
from __future__ import annotations

import yaml

from powersync_plugin.core.errors import DomainError

MAX_RULES_BYTES = 512 * 1024
MAX_ALIASES = 100  # a YAML bomb expands aliases; real rules files use few or none


class RulesRejected(DomainError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """Safe loading that refuses custom tags and caps alias use."""

    def __init__(self, stream):
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {MAX_ALIASES} YAML aliases (refused as a possible YAML bomb)", mark
                )
        return super().compose_node(parent, index)


def _refuse_unknown_tag(loader, tag_suffix, node):
    raise yaml.constructor.ConstructorError(
        None, None, f"custom YAML tag {node.tag!r} is not allowed in sync rules", node.start_mark
    )


_StrictLoader.add_multi_constructor("!", _refuse_unknown_tag)
_StrictLoader.add_multi_constructor("tag:", _refuse_unknown_tag)


def decode_rules(raw: bytes) -> str:
    if not raw.strip():
        raise RulesRejected("No rules on stdin: usage `dokku powersync:set-rules NAME < sync-rules.yaml`")
    if len(raw) > MAX_RULES_BYTES:
        raise RulesRejected(
            f"The rules are {len(raw)} bytes, over the {MAX_RULES_BYTES // 1024} KiB limit: "
            "is this really a sync rules file?"
        )
    if b"\x00" in raw:
        raise RulesRejected("The rules contain NUL bytes: expected a YAML text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RulesRejected(f"The rules are not UTF-8 text (line {line}, byte {exc.start})") from None


def check_rules(text: str) -> None:
    """Refuse invalid YAML and files with neither `bucket_definitions` nor `streams`."""
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a strict SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise RulesRejected(f"Invalid sync rules YAML: {where}{problem}") from None
    except yaml.YAMLError as exc:
        raise RulesRejected(f"Invalid sync rules YAML: {exc}") from None
    if not isinstance(document, dict):
        raise RulesRejected("Invalid sync rules: the top level must be a mapping with `bucket_definitions` or `streams`")
    if "bucket_definitions" not in document and "streams" not in document:
        raise RulesRejected(
            "Invalid sync rules: neither `bucket_definitions` nor `streams` is defined "
            f"(top-level keys: {', '.join(map(str, document)) or 'none'})"
        )
