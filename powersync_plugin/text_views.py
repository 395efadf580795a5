"""The read commands' results as Dokku prints them: `=====> ` headers and aligned detail lines.
(`--format json` prints the same results as JSON instead.)"""
from __future__ import annotations

import json


def info_lines(name: str, fields: dict[str, str]) -> list[str]:
    width = max(len(key) for key in fields) + 2
    return [f"=====> {name} powersync service information"] + [
        f"       {key.replace('-', ' ').capitalize() + ':':<{width}}{value}" for key, value in fields.items()
    ]


def revision_lines(name: str, revision: int, detail: dict) -> list[str]:
    lines = [f"=====> {name} revision {revision}"]
    for key, value in detail["event"].items():
        lines.append(f"       {key + ':':<14}{value if not isinstance(value, dict) else json.dumps(value, sort_keys=True)}")
    lines.append(f"=====> {name} state at revision {revision}")
    lines += [f"       {key + ':':<19}{value}" for key, value in detail["state"].items()]
    return lines


def history_lines(name: str, rows: list) -> list[str]:
    # the EVENT column fits the longest event (rules.activation_failed is 23 characters)
    width = max([19] + [len(row.event) for row in rows]) + 1
    lines = [
        f"=====> {name} history",
        f"{'REV':<5}{'TIME (UTC)':<22}{'ACTOR':<12}{'EVENT':<{width}}{'STATUS':<12}{'RULES':<18}DESCRIPTION",
    ]
    for row in rows:
        rules = f"{row.rules_revision} {row.rules_digest}" if row.rules_revision else "-"
        status = row.status + (f": {row.reason}" if row.reason and row.status == "failed" else "")
        description = row.description + (f" [{status}]" if row.status == "failed" else "")
        lines.append(f"{row.revision:<5}{row.recorded_at:<22}{row.actor[:11]:<12}{row.event:<{width}}{row.status:<12}{rules:<18}{description}")
    return lines


def status_lines(name: str, result: dict) -> list[str]:
    lines = [f"=====> {name} status"]
    for key, value in result.items():
        if key in ("active-rules", "deploying-rules"):
            value = "-" if not value else (
                f"slot {value['slot']}, lag {value['lag_bytes'] if value['lag_bytes'] is not None else '?'} bytes"
                + (f", errors: {'; '.join(value['errors'])}" if value["errors"] else "")
            )
        if key == "replication-errors":
            value = "; ".join(value) or "-"
        if key == "slots":
            value = ", ".join(f"{s['slot']} ({'active' if s['active'] else 'inactive'}, {s['retained_wal']} retained)" for s in value) or "-"
        lines.append(f"       {key.replace('-', ' ').capitalize() + ':':<16}{value}")
    return lines
