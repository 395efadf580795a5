"""`config:import` as Dokku 0.38.27 has it (plugins/config: subcommands.go `import`, SubImport,
loadFromFile with godotenv v1.5.1, loadFromFileJSON, SetMany; tests/unit/config.bats)."""
from __future__ import annotations

import json

from harness.config import parse_envfile


def test_envfile_parsing_follows_godotenv():
    text = (
        "# a comment\n\nA=1\nexport B = two words # trailing comment\n"
        'C="x\\ny \\"q\\" $A"\n'
        "D='lit $A \\n'\nE: yaml style\nF=\"multi\nline\"\nG=a#b\nH=${A}2\n"
    )
    assert parse_envfile(text) == {
        "A": "1", "B": "two words", "C": 'x\ny "q" 1', "D": "lit $A \\n", "E": "yaml style",
        "F": "multi\nline", "G": "a#b", "H": "12",
    }


def test_config_import_stdin_json_replace_and_triggers(harness):
    h = harness
    h.run("apps:create", "timp")
    h.run("config:set", "--no-restart", "timp", "FIRST=first")

    r = h.run("config:import", "--no-restart", "timp", "-", input="SECOND='with space'\n")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == ("-----> Reading config vars from stdin\n"
                        "-----> Setting config var SECOND=with space\n"
                        "-----> Setting config vars\n       SECOND:  with space\n")
    assert h.run("config:get", "timp", "FIRST").stdout == "first\n"
    assert h.run("config:get", "timp", "SECOND").stdout == "with space\n"

    value = "p@ss 'quoted' \"double\" \\ $HOME\nline2"
    r = h.run("--quiet", "config:import", "--format", "json", "--no-restart", "timp", "-",
              input=json.dumps({"J": value, "K": "2"}))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert json.loads(h.run("config:export", "--format", "json", "timp").stdout)["J"] == value
    fired = [t["args"] for t in h.triggers("post-config-update") if t["args"][:2] == ["timp", "set"]]
    assert sorted(fired[-1][2:]) == ["J", "K"]
    assert not h.deploys("timp")
    calls = (h.root / "calls.jsonl").read_text()
    assert "p@ss" not in calls and "with space" not in calls

    r = h.run("config:import", "--replace", "--no-restart", "timp", "-", input="ONLY=1\n")
    assert r.returncode == 0
    assert h.run("config:keys", "timp").stdout == "ONLY\n"
    assert sorted(h.triggers("post-config-update")[-1]["args"]) == sorted(["timp", "set", "ONLY"])


def test_config_import_refusals(harness):
    h = harness
    h.run("apps:create", "timp2")
    r = h.run("config:import", "timp2", "-", input="# nothing\n")
    assert (r.returncode, r.stderr) == (1, " !     No config vars to set\n")
    r = h.run("config:import", "--format", "json", "timp2", "-", input='{"1BAD": "x"}')
    assert (r.returncode, r.stderr.splitlines()[-1]) == (1, " !     Invalid key name: '1BAD'")
    r = h.run("config:import", "--format", "json", "timp2", "-", input='{"N": 1}')
    assert r.returncode == 1
    r = h.run("config:import", "--format", "yaml", "timp2", "-", input="A=1\n")
    assert (r.returncode, r.stderr) == (1, " !     Unknown format: yaml\n")
    r = h.run("config:import", "nope", "-", input="A=1\n")
    assert r.returncode == 20
    assert h.run("config:keys", "timp2").stdout == "NO_VHOST\n"


def test_config_import_restarts_a_deployed_app(harness, harness_web_images):
    h = harness
    app = h.unique("timp3")
    h.run("apps:create", app)
    assert h.run("git:from-image", app, harness_web_images["ready"]).returncode == 0
    before = len(h.deploys(app))
    r = h.run("config:import", "--format", "json", app, "-", input='{"A": "1"}')
    assert r.returncode == 0 and f"-----> Restarting app {app}" in r.stdout
    assert len(h.deploys(app)) == before + 1
    assert h.run("config:import", "--no-restart", "--format", "json", app, "-", input='{"B": "2"}').returncode == 0
    assert len(h.deploys(app)) == before + 1
