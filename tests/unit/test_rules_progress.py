"""The reprocessing progress line set-rules prints, read from the service's own log lines."""
from types import SimpleNamespace

from powersync_plugin.rules_delivery import progress_line

DIAGNOSTICS = {"data": {"deploying_sync_rules": {"connections": [
    {"slot_name": "ps_2_abcd", "replication_lag_bytes": 2048, "tables": [{"name": "todos"}, {"name": "lists"}]}]}}}


def services(logs: str):
    return SimpleNamespace(docker=SimpleNamespace(logs_since=lambda container_id, since: logs))


def test_progress_from_text_log_lines():
    logs = ('2026-11-29T15:35:33.142Z [info]: Replicating "public"."todos" 0/~40000 - resumable\n'
            '2026-11-29T15:35:33.181Z [info]: Replicating "public"."todos" 10000/~40000\n'
            '2026-11-29T15:35:33.181Z [info]: Replicating "public"."lists" 100/~100\n')
    line = progress_line(services(logs), "c", DIAGNOSTICS, 0.0, 5.0)
    assert line == ("reprocessing: 2 tables, 10,100/~40,100 rows replicated, slot lag 2,048 bytes, "
                    "5s elapsed; the previous rules keep serving")


def test_progress_from_the_real_images_json_lines_and_tables_without_an_estimate():
    # As the real 1.25.0 image logs them (JSON under NODE_ENV=production), for a table never
    # analyzed: `N/?` (observed on the image built from source; SourceTable.formatSnapshotProgress).
    logs = ('{"level":"info","message":"[ps_2_abcd] Replicating \\"public\\".\\"todos\\" 0/? - resumable","timestamp":"t"}\n'
            '{"level":"info","message":"[ps_2_abcd] Replicating \\"public\\".\\"todos\\" 10000/?","timestamp":"t"}\n'
            '{"level":"info","message":"[ps_2_abcd] Replicating \\"public\\".\\"lists\\" 20/~20","timestamp":"t"}\n')
    line = progress_line(services(logs), "c", DIAGNOSTICS, 0.0, 5.0)
    assert "10,020/? rows replicated" in line


def test_a_log_tail_shows_json_lines_in_the_services_text_format():
    from powersync_plugin.adapters.docker_engine import readable_log

    tail = ('{"level":"error","message":"[PSYNC_S1141] Replication error: wal_level must be set to \'logical\'",'
            '"timestamp":"2026-11-29T15:34:47.879Z"}\n'
            "Node.js v24.18.1\n")
    assert readable_log(tail) == ("2026-11-29T15:34:47.879Z [error]: [PSYNC_S1141] Replication error: wal_level must be set "
                                  "to 'logical'\nNode.js v24.18.1")


def test_a_replication_error_is_named_with_the_cause_the_service_logged():
    from powersync_plugin.rules_delivery import _with_cause

    logs = ('{"level":"error","message":"[ps_2_abcd] Replication error [PSYNC_S1120] Postgres error while replicating",'
            '"stack":"DatabaseQueryError: ...\\n    at x"}\n'
            '{"level":"error","message":"[ps_2_abcd] cause all replication slots are in use","stack":"PgError.53400: ..."}\n')
    message = "[PSYNC_S1120] Postgres error while replicating"
    assert _with_cause(services(logs), "c", message, 0.0) == f"{message} (all replication slots are in use)"
    assert _with_cause(services(""), "c", message, 0.0) == message


def test_the_cause_is_the_one_logged_for_the_deploying_slot():
    # A command that finds the rules already deploying looks back over earlier attempts (the
    # service logs the cause once per attempt, 30 s apart): only the lines of that slot count.
    from powersync_plugin.rules_delivery import _with_cause

    asked = []
    logs = ('{"level":"error","message":"[ps_2_abcd] cause all replication slots are in use"}\n'
            '{"level":"error","message":"[ps_1_0000] cause connection reset"}\n')
    s = SimpleNamespace(docker=SimpleNamespace(logs_since=lambda container_id, since: asked.append(since) or logs))
    message = "[PSYNC_S1120] Postgres error while replicating"
    assert _with_cause(s, "c", message, 1000.0, "ps_2_abcd") == f"{message} (all replication slots are in use)"
    assert asked[-1] < 1000.0 - 60
    assert _with_cause(s, "c", message, 1000.0, "ps_3_ffff") == message
