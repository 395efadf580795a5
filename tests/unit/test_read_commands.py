"""The plain forms of the read commands run without click, and mean exactly what click makes of
them: same options (checked against the click commands' metadata), same parameters for every argv
of a corpus, same output; anything else goes to click. A read loads neither click nor the Docker
SDK, SQLAlchemy or the engine adapter."""
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from powersync_plugin import read_commands
from powersync_plugin.adapters.journal import Journal, create_or_upgrade
from powersync_plugin.cli import cli
from tests.unit.test_history_window import _new
from tests.unit.test_projector_and_decisions import created_stream, link_events

ROOT = Path(__file__).resolve().parents[2]


def test_each_plain_option_is_the_click_commands_own():
    for name, (_, arguments, options, defaults) in read_commands.PLAIN_FORMS.items():
        command = cli.commands[name]
        click_arguments = tuple(param.name for param in command.params if isinstance(param, click.Argument))
        assert arguments == click_arguments, name
        by_flag = {flag: param for param in command.params if isinstance(param, click.Option) for flag in param.opts}
        for flag, (dest, meaning) in options.items():
            param = by_flag[flag]
            assert param.name == dest, (name, flag)
            assert param.is_flag == (not callable(meaning)), (name, flag)
            if param.is_flag:
                with command.make_context(name, ["x"] * len(arguments) + [flag]) as ctx:
                    assert ctx.params[dest] == meaning, (name, flag)
        with command.make_context(name, ["x"] * len(arguments)) as ctx:  # no option given: click's defaults
            assert {**defaults, **dict.fromkeys(arguments, "x")} == ctx.params, name


CORPUS = [
    ["list"], ["list", "--format", "json"], ["list", "--format=json"], ["list", "--format", "stdout"],
    ["list", "--format", "yaml"], ["list", "--format"], ["list", "extra"], ["list", "--help"], ["list", "-h"],
    ["info", "ps1"], ["info", "ps1", "--image"], ["info", "--api-token", "ps1"], ["info", "ps1", "--format", "json"],
    ["info", "--format=json", "ps1"], ["info", "ps1", "--image", "--url"], ["info", "ps1", "--image=x"],
    ["info"], ["info", "ps1", "ps2"], ["info", "ps1", "--imag"], ["info", "-", "--name"],
    ["exists", "ps1"], ["exists"], ["exists", "--", "ps1"], ["exists", "ps1", "--format", "json"],
    ["linked", "ps1", "api"], ["linked", "ps1"], ["links", "ps1"], ["app-links", "api"], ["app-links"],
    ["history", "ps1"], ["history", "ps1", "--rules"], ["history", "ps1", "--limit", "3"],
    ["history", "ps1", "--limit=03"], ["history", "ps1", "--limit", "0"], ["history", "ps1", "--limit", "-2"],
    ["history", "ps1", "--limit", "x"], ["history", "ps1", "--all", "--rules", "--format", "json"],
    ["history", "--limit", "2", "ps1"], ["history", "ps1", "--rules", "--rules"], ["history", "ps1", "--show", "2"],
    ["history", "ps1", "--diff", "r1..r2"], ["history", "ps1", "--rules=1"],
    ["status", "ps1"], ["status", "--all"], ["status", "--all", "--format", "json"], ["status", "--format=json", "--all"],
    ["status"], ["status", "ps1", "--all"], ["status", "--all", "--all"], ["status", "--all", "ps1", "ps2"],
    ["set-rules", "ps1"], ["help"],
]


@pytest.mark.parametrize("argv", CORPUS, ids=" ".join)
def test_a_plain_form_gets_the_parameters_click_gives_it(argv):
    params = read_commands.plain_params(argv[0], argv[1:])
    if params is None:
        return
    command = cli.commands[argv[0]]
    with command.make_context(argv[0], list(argv[1:])) as ctx:
        assert params == ctx.params


def test_the_common_forms_are_plain_and_odd_ones_go_to_click():
    plain = [argv for argv in CORPUS if read_commands.plain_params(argv[0], argv[1:]) is not None]
    assert plain == [
        ["list"], ["list", "--format", "json"], ["list", "--format=json"], ["list", "--format", "stdout"],
        ["info", "ps1"], ["info", "ps1", "--image"], ["info", "--api-token", "ps1"], ["info", "ps1", "--format", "json"],
        ["info", "--format=json", "ps1"], ["info", "-", "--name"],
        ["exists", "ps1"], ["linked", "ps1", "api"], ["links", "ps1"], ["app-links", "api"],
        ["history", "ps1"], ["history", "ps1", "--rules"], ["history", "ps1", "--limit", "3"],
        ["history", "ps1", "--limit=03"], ["history", "ps1", "--all", "--rules", "--format", "json"],
        ["history", "--limit", "2", "ps1"],
        ["status", "--all"], ["status", "--all", "--format", "json"], ["status", "--format=json", "--all"],
    ]


@pytest.fixture
def journal(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERSYNC_DATA_ROOT", str(tmp_path))
    create_or_upgrade(tmp_path / "journal.sqlite3")
    stream = created_stream()
    stream.add(link_events(stream.state))
    journal = Journal(tmp_path / "journal.sqlite3")
    for event in stream.events:
        journal.append("ps1", event.version - 1, [_new(event)], event.actor, event.command)
    return tmp_path


def _plugin(args: list[str], data_root: Path, probe: bool = False) -> subprocess.CompletedProcess:
    script = "import runpy, sys\nsys.argv = ['powersync_plugin', *sys.argv[1:]]\n"
    if probe:  # which heavy packages the command loaded, reported however it ends
        script += (
            "import atexit\natexit.register(lambda: sys.stderr.write('loaded: ' + repr(sorted(m for m in "
            "('click', 'docker', 'sqlalchemy', 'alembic', 'powersync_plugin.adapters.docker_engine') "
            "if m in sys.modules))))\n"
        )
    script += "runpy.run_module('powersync_plugin', run_name='__main__')\n"
    env = {**os.environ, "POWERSYNC_DATA_ROOT": str(data_root), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT, env=env)


READS = [
    ["powersync:list"], ["powersync:list", "--format", "json"], ["powersync:exists", "ps1"],
    ["powersync:links", "ps1"], ["powersync:linked", "ps1", "jeeves"], ["powersync:app-links", "jeeves"],
    ["powersync:history", "ps1", "--limit", "2"], ["powersync:info", "ps1", "--format", "json"],
]


@pytest.mark.parametrize("argv", READS, ids=" ".join)
def test_a_plain_read_prints_what_the_click_command_prints_and_loads_no_click(journal, argv):
    result = _plugin(argv, journal, probe=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith("loaded: []"), result.stderr
    via_click = CliRunner().invoke(cli, [argv[0].split(":", 1)[1], *argv[1:]], catch_exceptions=False)
    assert via_click.exit_code == 0
    assert result.stdout == via_click.stdout


def test_a_refusal_on_the_plain_path_is_dokkus_error_line(journal):
    result = _plugin(["powersync:linked", "ps1", "other-app"], journal, probe=True)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == " !     PowerSync instance ps1 is not linked to other-app\nloaded: []"
    missing = _plugin(["powersync:info", "nope"], journal)
    assert missing.returncode == 1
    assert missing.stderr == " !     Instance nope does not exist: create it with `dokku powersync:create nope`\n"


def test_what_is_not_plain_still_gets_clicks_answer(journal):
    result = _plugin(["powersync:history", "ps1", "--limit", "0"], journal, probe=True)
    assert result.returncode == 2
    assert result.stderr.startswith(" !     Invalid value for '--limit': 0 is not in the range x>=1.\n")
    assert "'click'" in result.stderr.rsplit("loaded: ", 1)[1]


def test_status_all_on_the_plain_path_prints_what_click_prints_without_click(journal, tmp_path, monkeypatch):
    """Against an engine socket that answers an empty container listing: ps1 is linked, so its
    container is missing."""
    import json as json_module
    import socket
    import threading

    engine = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(engine))
    server.listen(8)

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.recv(65536)
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[]")
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine}")
    try:
        for argv in (["powersync:status", "--all"], ["powersync:status", "--all", "--format", "json"]):
            result = _plugin(argv, journal, probe=True)
            assert result.returncode == 0, result.stderr
            assert "'click'" not in result.stderr.rsplit("loaded: ", 1)[1]
            via_click = CliRunner().invoke(cli, [argv[0].split(":", 1)[1], *argv[1:]], catch_exceptions=False)
            assert (via_click.exit_code, result.stdout) == (0, via_click.stdout)
        rows = json_module.loads(result.stdout)
        assert [(row["name"], row["state"]) for row in rows] == [("ps1", "missing")]
    finally:
        server.close()
