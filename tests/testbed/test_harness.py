"""The Dokku harness (tests/harness) against the real Dokku 0.38.27 + dokku-postgres 1.48 behaviour
recorded in shared/facts/dokku-transcripts.md and dokku-plugin-contract.md."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

APP_MISSING = " !     App nope does not exist\n"


def docker_inspect(ref):
    res = subprocess.run(["docker", "inspect", ref], capture_output=True, text=True)
    return json.loads(res.stdout)[0] if res.returncode == 0 else None


def app_containers(app):
    res = subprocess.run(["docker", "ps", "-a", "--filter", f"label=com.dokku.app-name={app}",
                          "--format", "{{.Names}}"], capture_output=True, text=True)
    return sorted(res.stdout.split())


# ---- exit codes and streams ------------------------------------------------------------------

def test_exit_codes_and_streams(harness):
    h = harness
    r = h.run("apps:create", "tapp1")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == ("-----> Creating tapp1...\n"
                        "-----> Global server virtual host not set, disabling app vhost...\n")
    assert h.run("--quiet", "apps:create", "tapp2").stdout == ""
    r = h.run("apps:create", "tapp1")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", " !     Name is already taken\n")
    for args in (("apps:exists", "nope"), ("config:get", "nope", "X"), ("ports:set", "nope", "http:80:5000"),
                 ("apps:destroy", "nope", "--force"), ("git:from-image", "nope", "img")):
        r = h.run(*args)
        assert (r.returncode, r.stdout, r.stderr) == (20, "", APP_MISSING), args
    r = h.run("ps:restart", "nope")  # the one core command that reports a missing app on stdout
    assert (r.returncode, r.stdout, r.stderr) == (20, APP_MISSING, "")
    r = h.run("apps:list", "--quiet")
    assert r.returncode == 2 and r.stderr.endswith("unknown flag: --quiet\n") and r.stdout == ""
    assert h.run("--quiet", "apps:list").stdout == "tapp1\ntapp2\n"
    r = h.run("config:set", "--no-restart", "tapp1", "NOEQUALS")
    assert (r.returncode, r.stderr) == (1, " !     Invalid env pair: NOEQUALS\n")
    r = h.run("config:set", "--no-restart", "tapp1", "1BAD=x")
    assert (r.returncode, r.stderr) == (1, " !     Invalid key name: '1BAD'\n")
    r = h.run("no-such:command")
    assert r.returncode == 1 and "`no-such:command` is not a dokku command." in r.stderr
    assert h.run("apps:create", "Bad_Name").returncode == 1


def test_config_output_and_formats(harness):
    h = harness
    h.run("apps:create", "tapp1")
    r = h.run("config:set", "tapp1", "FOO=bar", "SECRET=s3cr3t with space")
    assert r.stdout == "-----> Setting config vars\n       FOO:     bar\n       SECRET:  s3cr3t with space\n"
    assert h.run("--quiet", "config:set", "--no-restart", "tapp1", "C=3").stdout == ""
    r = h.run("config:set", "--no-restart", "--encoded", "tapp1", "ENC=aGVsbG89d29ybGQK")
    assert "ENC:  hello=world" in r.stdout
    assert h.run("config:get", "tapp1", "SECRET").stdout == "s3cr3t with space\n"
    r = h.run("config:get", "tapp1", "ABSENT")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")
    assert h.run("config:keys", "tapp1").stdout == "C\nENC\nFOO\nNO_VHOST\nSECRET\n"
    assert h.run("config:export", "--format", "json", "tapp1").stdout == (
        '{"C":"3","ENC":"hello=world\\n","FOO":"bar","NO_VHOST":"1","SECRET":"s3cr3t with space"}\n')
    assert h.run("config:export", "--format", "envfile", "tapp1").stdout == (
        'C=3\nENC="hello=world\\n"\nFOO="bar"\nNO_VHOST=1\nSECRET="s3cr3t with space"\n')
    assert h.run("config:export", "--format", "shell", "tapp1").stdout.endswith("SECRET='s3cr3t with space' ")
    r = h.run("config:unset", "--no-restart", "tapp1", "C", "NEVERSET")
    assert r.stdout == "-----> Unsetting C\n-----> Skipping NEVERSET, it is not set in the environment\n"


def test_plugn_config_trigger_quirks(harness):
    h = harness
    h.run("apps:create", "tapp1")
    h.run("config:set", "--no-restart", "tapp1", "FOO=bar")
    r = h.plugn("trigger", "config-get", "tapp1", "FOO")
    assert (r.returncode, r.stdout) == (0, "bar")  # no trailing newline
    for args in (("tapp1", "ABSENT"), ("nope", "FOO")):
        r = h.plugn("trigger", "config-get", *args)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = h.plugn("trigger", "config-set", "--no-restart", "nope", "X=1")
    assert r.returncode == 0 and "X:  1" in r.stdout
    assert h.run("apps:exists", "nope").returncode == 20
    r = h.plugn("trigger", "config-export", "tapp1")
    assert (r.returncode, r.stderr) == (1, ' !     strconv.ParseBool: parsing "": invalid syntax\n')
    assert h.plugn("trigger", "config-export", "nope", "false", "false", "json").returncode == 20
    r = h.plugn("trigger", "config-unset", "tapp1", "FOO", "false")
    assert r.stdout == "-----> Unsetting FOO\n"
    env = {k: v for k, v in h.env.items() if k != "PLUGIN_PATH"}
    r = subprocess.run(["plugn", "trigger", "config-get", "tapp1", "FOO"], env=env, capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (2, "!! PLUGIN_PATH is not set in environment\n")


def test_call_log_records_calls_without_secret_values(harness):
    h = harness
    h.run("apps:create", "tapp1")
    h.run("config:set", "--no-restart", "tapp1", "SECRET=hunter2-very-secret")
    h.plugn("trigger", "config-set", "--no-restart", "tapp1", "OTHER=also-secret")
    raw = (h.root / "calls.jsonl").read_text()
    assert "hunter2" not in raw and "also-secret" not in raw
    calls = h.calls()
    assert [c["argv"][0] for c in calls if c["tool"] == "dokku"] == ["apps:create", "config:set"]
    set_call = calls[1]
    assert set_call["argv"] == ["config:set", "--no-restart", "tapp1", "SECRET=***"]
    assert (set_call["user"], set_call["invoked_uid"], set_call["rc"]) == ("dokku", 0, 0)
    fired = [t for t in h.triggers("post-config-update") if t["args"][0] == "tapp1"]
    assert [t["args"] for t in fired] == [["tapp1", "set", "NO_VHOST"], ["tapp1", "set", "SECRET"],
                                         ["tapp1", "set", "OTHER"]]
    assert fired[0]["quiet"] is True


def test_domains_set_clears_ports_map(harness):
    h = harness
    h.run("apps:create", "tapp1")
    assert h.run("ports:set", "tapp1", "http:80:8080").stdout == ""
    assert h.run("ports:report", "tapp1", "--ports-map").stdout == "http:80:8080\n"
    r = h.run("ports:set", "tapp1", "http:80")
    assert (r.returncode, r.stderr) == (1, " !     Invalid port map http:80 [len=2]\n")
    assert h.run("domains:set", "tapp1", "ps.example.com").stdout == "-----> Set ps.example.com for tapp1\n"
    assert h.run("ports:report", "tapp1", "--ports-map").stdout == "\n"
    assert h.run("domains:report", "tapp1", "--domains-app-vhosts").stdout == "ps.example.com\n"
    assert h.run("domains:report", "tapp1", "--domains-app-enabled").stdout == "true\n"


def test_apps_destroy_confirmation(harness):
    h = harness
    h.run("apps:create", "tapp3")
    r = h.run("apps:destroy", "tapp3")
    assert (r.returncode, r.stdout) == (1, "> ")
    assert r.stderr.endswith(' !     To proceed, type "tapp3"\n !     EOF\n')
    r = h.run("apps:destroy", "tapp3", input="wrong\n")
    assert r.returncode == 1 and r.stderr.endswith("Confirmation did not match test. Aborted.\n")
    r = h.run("apps:destroy", "tapp3", input="tapp3\n")
    assert r.returncode == 0 and "-----> Destroying tapp3 (including all add-ons)" in r.stdout
    assert h.run("apps:exists", "tapp3").returncode == 20


# ---- plugins and triggers ----------------------------------------------------------------------

def test_probe_plugin_install_env_users_and_triggers(harness, probe_plugin):
    h = harness
    h.run("apps:create", "before")
    log = probe_plugin.install()
    entries = log()
    install = [e for e in entries if e["trigger"] == "install"]
    assert install and install[0]["user"] == "root" and install[0]["argv"] == []
    assert {"trigger": "post-config-update", "user": "root", "quiet": "1",
            "argv": ["before", "set", "NO_VHOST"]} in [{k: e[k] for k in ("trigger", "user", "quiet", "argv")}
                                                       for e in entries]
    probe_plugin.clear()
    h.run("apps:create", "tapp1")
    h.run("config:set", "tapp1", "B=2", "A=1")
    h.run("config:unset", "tapp1", "A", "B")
    fired = [(e["trigger"], e["user"], e["quiet"], e["argv"]) for e in log()]
    assert fired[:3] == [("post-config-update", "dokku", "1", ["tapp1", "set", "NO_VHOST"]),
                         ("post-domains-update", "dokku", "", ["tapp1", "disable"]),
                         ("post-create", "dokku", "", ["tapp1"])]
    assert fired[3][:2] == ("post-config-update", "dokku")
    assert fired[3][3][:2] == ["tapp1", "set"] and sorted(fired[3][3][2:]) == ["A", "B"]
    assert fired[4][3][:2] == ["tapp1", "unset"] and sorted(fired[4][3][2:]) == ["A", "B"]
    # subcommand dispatch: argv NAME:sub args, as dokku, with Dokku's plugin environment
    r = h.run("tprobe:env", "x")
    env = json.loads(r.stdout)
    assert env["argv"] == ["tprobe:env", "x"] and env["user"] == "dokku"
    lib = str(h.root / "var/lib/dokku")
    assert env["PLUGIN_ENABLED_PATH"] == lib + "/plugins/enabled"
    assert env["PLUGIN_AVAILABLE_PATH"] == lib + "/plugins/available"
    assert (env["DOKKU_LIB_ROOT"], env["DOKKU_ROOT"]) == (lib, str(h.root / "home/dokku"))
    assert env["DOKKU_NOT_IMPLEMENTED_EXIT"] == "10" and env["SSH_USER"] == "root"
    assert env["PATH"].split(":")[0].endswith("tests/harness/bin")
    assert h.run("tprobe:hello").stdout == "hello from commands\n"
    assert "is not a dokku command" in h.run("tprobe:nothing").stderr
    assert h.run("plugin:installed", "tprobe").returncode == 0
    assert h.run("plugin:installed", "nope").returncode == 1


def test_apps_destroy_fires_pre_and_post_delete(harness, probe_plugin):
    h = harness
    log = probe_plugin.install()
    h.run("apps:create", "tapp2")
    h.run("apps:create", "keep-me")
    probe_plugin.clear()
    r = h.run("apps:destroy", "tapp2", "--force")
    assert r.returncode == 0
    assert [(e["trigger"], e["argv"]) for e in log()] == [("pre-delete", ["tapp2", "latest"]),
                                                          ("post-delete", ["tapp2", "latest"])]
    r = h.run("apps:destroy", "keep-me", "--force")  # the probe's pre-delete refuses keep-*
    assert r.returncode == 1
    assert h.run("apps:exists", "keep-me").returncode == 0


def test_failing_install_trigger_keeps_plugin(harness, probe_plugin):
    h = harness
    r = probe_plugin.install_raw(name="failer", fail_install=True)
    assert r.returncode == 1
    assert h.run("plugin:installed", "failer").returncode == 0
    assert (h.root / "var/lib/dokku/plugins/enabled/failer").is_symlink()


# ---- deploys and restarts ------------------------------------------------------------------------

def test_deploy_restart_and_checks(harness, harness_web_images):
    h = harness
    app = h.unique("tweb")
    h.run("apps:create", app)
    r = h.run("git:from-image", app, harness_web_images["ready"])
    assert (r.returncode, r.stderr) == (0, ""), r.stdout
    assert "Healthcheck succeeded name='ready'" in r.stdout
    assert r.stdout.endswith("=====> Application deployed:\n       http://" + r.stdout.rsplit("http://", 1)[1])
    first = docker_inspect(f"{app}.web.1")
    labels = first["Config"]["Labels"]
    assert labels["com.dokku.app-name"] == app and labels["com.dokku.process-type"] == "web"
    assert labels["com.dokku.container-type"] == "deploy" and labels["com.dokku.dyno"] == "web.1"
    assert first["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 10}
    assert (h.root / f"home/dokku/{app}/CONTAINER.web.1").read_text().strip() == first["Id"]

    r = h.run("git:from-image", app, harness_web_images["ready"])
    assert (r.returncode, r.stderr) == (1, "")
    assert r.stdout.endswith(" !     No changes detected, skipping git commit\n"
                             " !     Call 'ps:rebuild' on app to rebuild the app from existing source\n")

    r = h.run("ps:restart", app)
    assert r.returncode == 0 and r.stdout.startswith("-----> Deploying web (count=1)\n")
    second = docker_inspect(f"{app}.web.1")
    assert second["Id"] != first["Id"]
    old = docker_inspect(first["Id"])
    assert old["Name"].startswith(f"/{app}.web.1.")  # retired name APP.web.1.<unix-ts>
    assert old["HostConfig"]["RestartPolicy"]["Name"] == "no"
    for _ in range(50):  # SIGTERM was sent after the switch; the test app exits on it
        if not old["State"]["Running"]:
            break
        time.sleep(0.1)
        old = docker_inspect(first["Id"])
    assert not old["State"]["Running"]
    assert second["State"]["StartedAt"] < old["State"]["FinishedAt"]  # new started before old stopped

    r = h.run("config:set", "--no-restart", app, "A=1")
    assert "Restarting" not in r.stdout
    r = h.run("config:set", app, "B=2")
    assert r.returncode == 0 and "-----> Restarting app " + app in r.stdout
    third = docker_inspect(f"{app}.web.1")
    out = subprocess.run(["docker", "exec", third["Id"], "node", "-e",
                          "console.log(process.env.A, process.env.B, process.env.DYNO, process.env.PORT)"],
                         capture_output=True, text=True).stdout
    assert out.split() == ["1", "2", "web.1", "5000"]

    restarts = h.restarts(app)
    assert [(e["kind"], e["reason"], e["outcome"]) for e in restarts] == [
        ("restart", "ps:restart", "deployed"), ("restart", "config:set", "deployed")]
    assert restarts[0]["old"] == first["Id"] and restarts[0]["new"] == second["Id"]
    assert len(h.deploys(app)) == 3

    # a failing startup check keeps the old container serving
    r = h.run("git:from-image", app, harness_web_images["failing"])
    assert (r.returncode, r.stderr) == (1, "")
    assert " !     Could not start due to 1 failed checks (web.1)" in r.stdout
    still = docker_inspect(f"{app}.web.1")
    assert still["Id"] == third["Id"] and still["State"]["Running"]
    assert_refused_left_stopped(app)
    assert h.deploys(app)[-1]["outcome"] == "failed"

    r = h.run("apps:destroy", app, "--force")
    assert r.returncode == 0 and f"Attempting to retire {app} container {third['Id']}" in r.stdout
    assert app_containers(app) == []


def assert_refused_left_stopped(app: str) -> None:
    """Dokku's kill_new: the refused container stays, stopped, restart policy off, for retirement."""
    refused = [docker_inspect(n) for n in app_containers(app) if ".web.1.upcoming-" in n]
    assert len(refused) == 1, app_containers(app)
    assert not refused[0]["State"]["Running"] and refused[0]["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_uptime_check_gates_the_switch(harness, harness_web_images):
    """docker-container-healthchecker 0.16 `uptime: N`: Dokku switches only to a container that has
    been up N seconds (checks run concurrently); one that dies sooner fails the deploy."""
    h = harness
    app = h.unique("tup")
    h.run("apps:create", app)
    started = time.monotonic()
    r = h.run("git:from-image", app, harness_web_images["uptime"])
    assert r.returncode == 0, r.stdout
    assert "Running healthcheck name='stays up' type='uptime' uptime=5" in r.stdout
    assert "Healthcheck succeeded name='stays up'" in r.stdout and "Healthcheck succeeded name='ready'" in r.stdout
    assert time.monotonic() - started >= 5
    first = docker_inspect(f"{app}.web.1")

    # The new container crashes 3 s after start: still running when /ready passes, dead at 5 s.
    r = h.run("config:set", app, "EXIT_AFTER_S=3")
    assert r.returncode != 0, r.stdout
    assert "Healthcheck succeeded name='ready'" in r.stdout
    assert ("Failure in name='stays up': container state is not running" in r.stdout
            or "Failure in name='stays up': container has restarted" in r.stdout), r.stdout
    assert " !     Could not start due to 1 failed checks (web.1)" in r.stdout
    still = docker_inspect(f"{app}.web.1")
    assert still["Id"] == first["Id"] and still["State"]["Running"]
    assert_refused_left_stopped(app)


def test_uptime_check_validation():
    """Healthcheck.Validate(): `uptime` cannot share a check with `path`, `command` or `listening`."""
    from harness.deploy import _check_invalid, _check_kind
    assert _check_invalid("x", {"path": "/ready", "uptime": 5}) == (
        "healthcheck name='x' cannot contain both an http 'path' to check and an 'uptime' seconds value")
    assert "'command' to execute and an 'uptime'" in _check_invalid("x", {"command": ["true"], "uptime": 5})
    assert _check_invalid("x", {"uptime": 5}) is None and _check_kind({"uptime": 5}) == "uptime"
    assert _check_kind({"path": "/", "uptime": 5}) == "path" and _check_kind({}) == "uptime"


def test_default_check_and_resource_limit(harness, harness_web_images):
    h = harness
    app = h.unique("tplain")
    h.run("apps:create", app)
    h.run("resource:limit", "--memory", "400m", app)
    r = h.run("git:from-image", app, harness_web_images["plain"], env={"DOKKU_DEFAULT_CHECKS_WAIT": "1"})
    assert r.returncode == 0, r.stdout
    assert "No web healthchecks found in app.json. Simple container checks will be performed." in r.stdout
    info = docker_inspect(f"{app}.web.1")
    assert info["HostConfig"]["Memory"] == 419430400
    assert h.run("ps:report", app, "--deployed").stdout == "true\n"
    assert h.run("ps:report", app, "--status-web.1").stdout.startswith("running (CID: ")
    h.run("ps:stop", app)
    assert h.run("ps:report", app, "--running").stdout == "false\n"


# ---- dokku-postgres ---------------------------------------------------------------------------------

def test_postgres_link_unlink_and_quirks(harness, harness_web_images):
    h = harness
    svc, app = h.unique("tdb"), h.unique("tps")
    r = h.run("postgres:create", svc, "-c", "-c wal_level=logical")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"=====> Postgres container created: {svc}" in r.stdout
    dsn = h.run("postgres:info", svc, "--dsn").stdout.strip()
    assert dsn.startswith("postgres://postgres:") and dsn.endswith(f"@dokku-postgres-{svc}:5432/{svc.replace('-', '_')}")
    assert h.run("postgres:info", svc, "--links").stdout == "-\n"
    r = h.run("postgres:connect", svc, input="SHOW wal_level;\n")
    assert r.stdout == " wal_level \n-----------\n logical\n(1 row)\n\n"
    r = h.run("postgres:connect", svc, input="SELECT nope;\n")
    assert r.returncode == 3 and 'column "nope" does not exist' in r.stderr

    h.run("apps:create", app)
    assert h.run("postgres:link", svc, "nope").returncode == 20
    r = h.run("postgres:link", svc, app)
    assert r.returncode == 0
    assert r.stdout == f"-----> Setting config vars\n       DATABASE_URL:  {dsn}\n"
    assert h.run("config:get", app, "DATABASE_URL").stdout == dsn + "\n"
    assert h.run("postgres:info", svc, "--links").stdout == f"{app} \n"
    opts = h.run("docker-options:report", app).stdout
    assert opts.count(f"--link dokku.postgres.{svc}:dokku-postgres-{svc}") == 3
    r = h.run("postgres:link", svc, app)
    assert (r.returncode, r.stderr) == (1, " !     Already linked as DATABASE_URL\n")

    assert h.run("git:from-image", app, harness_web_images["ready"]).returncode == 0
    res = subprocess.run(["docker", "exec", f"{app}.web.1", "getent", "hosts", f"dokku-postgres-{svc}"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip()
    r = h.run("run", app, "sh", "-c", f'getent hosts dokku-postgres-{svc} >/dev/null && echo "$DATABASE_URL"')
    assert (r.returncode, r.stdout) == (0, dsn + "\n")
    assert h.run("run", app, "false").returncode == 1
    assert app_containers(app) == [f"{app}.web.1"]  # one-off containers are removed

    # unlink deletes every var holding the DSN, and restarts the deployed app
    h.run("config:set", "--no-restart", app, f"PS_DATA_SOURCE_URI={dsn}")
    r = h.run("postgres:unlink", svc, app)
    assert r.returncode == 0
    assert r.stdout.startswith("-----> Unsetting DATABASE_URL\n-----> Unsetting PS_DATA_SOURCE_URI\n"
                               f"-----> Restarting app {app}\n")
    assert h.run("config:keys", app).stdout.split() == ["GIT_REV", "NO_VHOST"]
    assert h.restarts(app)[-1]["reason"] == "postgres:unlink"
    r = h.run("postgres:unlink", svc, app)
    assert (r.returncode, r.stderr) == (1, f" !     Not linked to app {app}\n")

    # phantom link: any var holding the DSN makes link refuse
    h.run("config:set", "--no-restart", app, f"PS_DATA_SOURCE_URI={dsn}")
    for extra in ((), ("--alias", "PSDB")):
        r = h.run("postgres:link", svc, app, "--no-restart", *extra)
        assert (r.returncode, r.stderr) == (1, " !     Already linked as PS_DATA_SOURCE_URI\n")
    h.run("config:unset", "--no-restart", app, "PS_DATA_SOURCE_URI")
    restarts_before = len(h.restarts(app))
    r = h.run("postgres:link", svc, app, "--no-restart")
    assert r.returncode == 0 and r.stdout.endswith("       Skipping restart of linked app\n")
    assert len(h.restarts(app)) == restarts_before

    r = h.run("postgres:destroy", svc, "--force")
    assert (r.returncode, r.stderr) == (1, " !     Cannot delete linked service\n")
    r = h.run("apps:destroy", app, "--force")
    assert f"       Unlinking from {svc}" in r.stdout
    assert h.run("postgres:info", svc, "--links").stdout == "-\n"
    r = h.run("postgres:destroy", svc, "--force")
    assert r.returncode == 0 and r.stdout.endswith(f"=====> Postgres container deleted: {svc}\n")
    assert docker_inspect(f"dokku.postgres.{svc}") is None


@pytest.mark.parametrize("args,rc,stderr", [
    (("postgres:info", "nope"), 1, " !     Postgres service nope does not exist\n"),
    (("postgres:create",), 1, " !     Please specify a valid name for the service. Valid characters are: [A-Za-z0-9_]+\n"),
])
def test_postgres_errors(harness, args, rc, stderr):
    r = harness.run(*args)
    assert (r.returncode, r.stdout, r.stderr) == (rc, "", stderr)


def test_plugin_lifecycle_triggers(harness, probe_plugin):
    h = harness
    log = probe_plugin.install()
    r = h.run("plugin:list")
    assert "tprobe" in r.stdout and "postgres" in r.stdout
    for cmd, trigger, argv in (("plugin:install-dependencies", "dependencies", []),
                               ("plugin:update", "update", [])):
        probe_plugin.clear()
        assert h.run(cmd).returncode == 0
        assert [(e["trigger"], e["user"], e["argv"]) for e in log()] == [(trigger, "root", argv)]
    probe_plugin.clear()
    r = h.run("plugin:uninstall", "tprobe")
    assert r.returncode == 0
    assert [(e["trigger"], e["user"], e["argv"]) for e in log()] == [("uninstall", "root", ["tprobe"])]
    assert h.run("plugin:installed", "tprobe").returncode == 1
    assert h.run("plugin:uninstall", "tprobe").stderr == " !     Plugin does not exist\n"


def test_help_runs_every_commands_match_like_dokku(harness, probe_plugin):
    """Dokku's `help` runs every `find -L plugins/enabled -name commands` match under
    `set -eo pipefail`; plugin:* commands end with `dokku --quiet help --all` (the real host:
    a venv's pip/_internal/commands directory made plugin:install and `dokku help` exit 126)."""
    h = harness
    probe_plugin.install()
    listing = h.run("help")
    assert listing.returncode == 0, listing.stderr
    assert "Community plugin commands:" in listing.stdout and "tprobe:hello" in listing.stdout
    assert "    apps " in listing.stdout  # core rows come first, cut to their names
    assert h.run("help", "--all").returncode == 0
    assert "tprobe:hello" in (h.root / "var/cache/dokku-completion").read_text().split()
    quiet = h.run("--quiet", "help", "--all")
    assert "Usage:" not in quiet.stdout and "tprobe:hello" in quiet.stdout
    nested = h.root / "var/lib/dokku/plugins/available/tprobe/venv/site-packages/pip/_internal/commands"
    nested.mkdir(parents=True)
    for args, line in ((("help",), 275), (("help", "--all"), 263)):
        broken = h.run(*args)
        assert broken.returncode == 126
        seen = str(nested).replace("/available/", "/enabled/")  # find walks enabled/, as on the real host
        assert f"dokku: line {line}: {seen}: Is a directory" in broken.stderr
    assert h.run("plugin:disable", "tprobe").returncode == 0  # no longer scanned
    enabled = h.run("plugin:enable", "tprobe")
    assert enabled.returncode == 126 and "Is a directory" in enabled.stderr
    assert "Priming bash-completion cache" in enabled.stdout
    nested.rmdir()
    assert h.run("help").returncode == 0


def test_install_plugin_from_working_tree(harness):
    """The mechanism only: the outcome of the plugin's own install trigger belongs to its tests."""
    h = harness
    h.install_plugin()
    installed = h.root / "var/lib/dokku/plugins/available/powersync"
    tracked = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(installed), "ls-files"],
                             capture_output=True, text=True).stdout.split()
    assert "tests/harness/fixture.py" in tracked and not [f for f in tracked if f.startswith(".venv/")]
    assert (h.root / "var/lib/dokku/plugins/enabled/powersync").resolve() == installed
    assert installed.stat().st_uid != 0  # chowned to dokku
    assert h.run("plugin:installed", "powersync").returncode == 0
    h.update_plugin()
    assert ["plugin:update", "powersync"] in h.commands()
    head = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(installed), "rev-list", "--count", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert head == "2"


def test_storage_docker_options_logs_and_tls_records(harness, harness_web_images):
    h = harness
    app = h.unique("tstore")
    h.run("apps:create", app)
    host = h.root / "var/lib/dokku/data/storage" / app
    host.mkdir(parents=True)
    (host / "hello.txt").write_text("from the host\n")
    assert h.run("storage:mount", app, f"{host}:/data").stdout == ""
    r = h.run("storage:mount", app, f"{host}:/data")
    assert (r.returncode, r.stderr) == (1, " !     Mount path already exists.\n")
    assert h.run("storage:list", app).stdout == f"-----> {app} volume bind-mounts:\n       {host}:/data\n"
    h.run("docker-options:add", app, "deploy", "--add-host=example.invalid:127.0.0.2")
    assert h.run("logs", app).stderr == f" !     App {app} has not been deployed\n"
    assert h.run("git:from-image", app, harness_web_images["ready"]).returncode == 0
    res = subprocess.run(["docker", "exec", f"{app}.web.1", "sh", "-c",
                          "cat /data/hello.txt; getent hosts example.invalid"], capture_output=True, text=True)
    assert res.stdout.startswith("from the host\n127.0.0.2")
    r = h.run("logs", app, "-n", "5")
    assert r.returncode == 0 and "app[web.1]:\x1b[0m listening on 5000" in r.stdout
    assert h.run("letsencrypt:enable", app).returncode == 1  # dokku-letsencrypt needs a domain
    h.run("domains:set", app, "tstore.example.test")
    assert h.run("letsencrypt:enable", app).returncode == 0
    assert h.run("nginx:reload").returncode == 0
    assert h.app_state(app)["letsencrypt"] is True and h.nginx_reloads() == 1


def test_concurrent_restarts_queue_on_the_deploy_lock(harness, harness_web_images):
    h = harness
    app = h.unique("tlock")
    h.run("apps:create", app)
    h.run("checks:skip", app, "web")
    assert h.run("git:from-image", app, harness_web_images["plain"]).returncode == 0
    procs = [subprocess.Popen(["dokku", "ps:restart", app], env=h.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("currently has a deploy lock in place. Waiting..." in o for o, _ in outs) <= 1
    restarts = h.restarts(app)
    assert len(restarts) == 2 and restarts[1]["old"] == restarts[0]["new"]
    assert docker_inspect(f"{app}.web.1")["Id"] == restarts[1]["new"]
    assert "Zero downtime checks have been skipped (web.1)" in outs[0][0]


# ---- apps:rename / apps:clone ---------------------------------------------------------------------

RENAME_TRIGGERS = ("post-create", "post-app-rename-setup", "pre-delete", "post-delete", "post-app-rename")


def container_env(ref, *names):
    script = "console.log(" + ",".join(f"process.env.{n}" for n in names) + ")"
    return subprocess.run(["docker", "exec", ref, "node", "-e", script], capture_output=True, text=True).stdout.split()


def test_apps_rename_deployed_app(harness, harness_web_images, probe_plugin):
    h = harness
    log = probe_plugin.install()
    old, new = h.unique("tren"), h.unique("tnew")
    h.run("apps:create", old)
    h.run("domains:set", old, "old.example.com")
    h.run("ports:set", old, "http:80:5000")
    h.run("config:set", "--no-restart", old, "A=1")
    h.run("resource:limit", "--memory", "300m", old)
    h.run("docker-options:add", old, "deploy", "--add-host=example.invalid:127.0.0.2")
    assert h.run("git:from-image", old, harness_web_images["ready"]).returncode == 0
    old_cid = docker_inspect(f"{old}.web.1")["Id"]
    env_before = h.config(old)
    probe_plugin.clear()

    r = h.run("apps:rename", old, new)
    assert (r.returncode, r.stderr) == (0, ""), r.stdout
    assert r.stdout.startswith(f"-----> Renaming {old} to {new}\n-----> Creating {new}...\n")
    assert f"-----> Destroying {old} (including all add-ons)\n" in r.stdout
    assert f"Attempting to retire {old} container {old_cid}" in r.stdout
    assert "=====> Application deployed:" in r.stdout

    assert h.run("apps:exists", old).returncode == 20
    assert h.run("apps:exists", new).returncode == 0
    assert app_containers(old) == [] and docker_inspect(old_cid) is None
    assert docker_inspect(f"dokku/{old}:latest") is None
    cur = docker_inspect(f"{new}.web.1")
    assert cur["State"]["Running"] and cur["Config"]["Labels"]["com.dokku.app-name"] == new
    assert container_env(f"{new}.web.1", "A", "GIT_REV") == ["1", env_before["GIT_REV"]]
    assert h.config(new) == env_before
    st = h.app_state(new)
    assert st["domains"] == ["old.example.com"] and st["vhost_enabled"] is True
    assert st["ports"] == ["http:80:5000"]
    assert st["resource"] == {"_default_": {"memory": "300m"}}
    assert st["docker_options"]["deploy"] == ["--add-host=example.invalid:127.0.0.2"]
    assert st["deploy"]["source_image"] == harness_web_images["ready"] and st["deploy"]["deployed"] is True
    assert cur["HostConfig"]["Memory"] == 300 * 1024 * 1024

    fired = [(t["name"], t["args"]) for t in h.triggers()
             if t["call"][0] == "apps:rename" and t["name"] in RENAME_TRIGGERS]
    expected = [("post-create", [new]), ("post-app-rename-setup", [old, new]), ("pre-delete", [old, "latest"]),
                ("post-delete", [old, "latest"]), ("post-app-rename", [old, new])]
    assert fired == expected
    assert [(e["trigger"], e["argv"]) for e in log() if e["trigger"] in RENAME_TRIGGERS] == expected
    assert {e["user"] for e in log()} == {"dokku"}
    assert [(d["kind"], d["reason"], d["outcome"]) for d in h.deploys(new)] == [("rebuild", "apps:rename", "deployed")]


def test_apps_rename_skip_deploy_and_refusals(harness, harness_web_images):
    h = harness
    app, taken, new = h.unique("trs"), h.unique("ttaken"), h.unique("trsnew")
    h.run("apps:create", app)
    h.run("apps:create", taken)
    h.run("checks:skip", app, "web")
    assert h.run("git:from-image", app, harness_web_images["plain"]).returncode == 0
    cid = docker_inspect(f"{app}.web.1")["Id"]

    for args, rc, stderr in (
            ((app, taken), 1, " !     Name is already taken\n"),
            (("nope", new), 20, APP_MISSING),
            ((app,), 1, " !     Please specify an new app name\n"),
            ((), 1, " !     Please specify an app to run the command on\n"),
            ((app, "Bad_Name"), 1, " !     App name must begin with lowercase alphanumeric character, and may only "
                                   "contain lowercase alphanumerics, dots, and hyphens\n")):
        r = h.run("apps:rename", *args)
        assert (r.returncode, r.stdout, r.stderr) == (rc, "", stderr), args
    r = h.run("apps:rename", "--bogus", app, new)
    assert r.returncode == 2 and r.stderr.endswith("unknown flag: --bogus\n")
    assert not [t for t in h.triggers() if t["call"][0] == "apps:rename"]  # nothing fired on a refusal
    assert docker_inspect(f"{app}.web.1")["Id"] == cid and h.run("apps:exists", taken).returncode == 0

    r = h.run("apps:rename", "--skip-deploy", app, new)
    assert (r.returncode, r.stderr) == (0, ""), r.stdout
    assert "Application deployed" not in r.stdout
    assert h.run("apps:exists", app).returncode == 20 and app_containers(app) == []
    assert app_containers(new) == [] and h.deploys(new) == []
    assert h.run("ps:report", new, "--deployed").stdout == "false\n"
    assert h.app_state(new)["checks"]["skipped"] == ["web"]
    assert [t["name"] for t in h.triggers() if t["call"][:2] == ["apps:rename", "--skip-deploy"]
            and t["name"] in RENAME_TRIGGERS] == list(RENAME_TRIGGERS)
    # the source image came along: NEW can be rebuilt
    r = h.run("ps:rebuild", new)
    assert r.returncode == 0, r.stdout
    assert docker_inspect(f"{new}.web.1")["State"]["Running"]

    # a never-deployed app renames too; there is nothing to rebuild
    bare, bare_new = h.unique("tbare"), h.unique("tbarenew")
    h.run("apps:create", bare)
    r = h.run("--quiet", "apps:rename", bare, bare_new)
    # --quiet drops the Renaming/Creating/Destroying lines; the destroy step's cleanup lines stay,
    # as they do for apps:destroy itself
    assert (r.returncode, r.stdout, r.stderr) == (0, "-----> Cleaning up...\n-----> Retiring old containers and images\n", "")
    assert h.deploys(bare_new) == [] and h.run("apps:exists", bare_new).returncode == 0


def test_apps_clone(harness, harness_web_images):
    h = harness
    app, twin, bare = h.unique("tcl"), h.unique("tcltwin"), h.unique("tclbare")
    h.run("apps:create", app)
    h.run("domains:add", app, "clone-me.example.com")
    h.run("config:set", "--no-restart", app, "K=v")
    assert h.run("git:from-image", app, harness_web_images["ready"]).returncode == 0
    cid = docker_inspect(f"{app}.web.1")["Id"]

    r = h.run("apps:clone", app, twin)
    assert (r.returncode, r.stderr) == (0, ""), r.stdout
    assert r.stdout.startswith(f"-----> Cloning {app} to {twin}\n-----> Creating {twin}...\n")
    assert "Destroying" not in r.stdout
    assert h.run("apps:exists", app).returncode == 0 and h.run("apps:exists", twin).returncode == 0
    assert docker_inspect(f"{app}.web.1")["Id"] == cid and docker_inspect(cid)["State"]["Running"]
    assert docker_inspect(f"{twin}.web.1")["State"]["Running"]
    assert h.config(twin) == h.config(app)
    assert container_env(f"{twin}.web.1", "K") == ["v"]
    assert h.app_state(twin)["domains"] == [] and h.app_state(app)["domains"] == ["clone-me.example.com"]
    fired = [(t["name"], t["args"]) for t in h.triggers() if t["call"][0] == "apps:clone"
             and t["name"] in ("post-create", "post-app-clone-setup", "post-app-clone", "pre-delete")]
    assert fired == [("post-create", [twin]), ("post-app-clone-setup", [app, twin]), ("post-app-clone", [app, twin])]
    assert [(d["kind"], d["reason"]) for d in h.deploys(twin)] == [("rebuild", "apps:clone")]

    r = h.run("apps:clone", app, twin)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", " !     Name is already taken\n")
    r = h.run("apps:clone", "--ignore-existing", app, twin)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", " !     Name is already taken\n")
    r = h.run("apps:clone", "--ignore-existing", "nope", twin)
    assert (r.returncode, r.stderr) == (20, APP_MISSING)

    r = h.run("--quiet", "apps:clone", "--skip-deploy", app, bare)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert app_containers(bare) == [] and h.deploys(bare) == []
    assert h.config(bare)["K"] == "v"
    assert h.app_state(bare)["deploy"]["source_image"] == harness_web_images["ready"]


def test_apps_rename_and_clone_keep_postgres_links(harness, harness_web_images):
    h = harness
    svc, app, new, twin = h.unique("tdbr"), h.unique("tpgr"), h.unique("tpgrnew"), h.unique("tpgrtwin")
    assert h.run("postgres:create", svc).returncode == 0
    dsn = h.run("postgres:info", svc, "--dsn").stdout.strip()
    h.run("apps:create", app)
    assert h.run("postgres:link", svc, app, "--no-restart").returncode == 0
    assert h.run("git:from-image", app, harness_web_images["ready"]).returncode == 0

    r = h.run("apps:rename", app, new)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"       Unlinking from {svc}\n" in r.stdout  # pre-delete OLD ran after the setup step
    assert h.run("postgres:info", svc, "--links").stdout == f"{new} \n"
    assert h.run("postgres:linked", svc, new).returncode == 0
    assert h.config(new)["DATABASE_URL"] == dsn
    assert h.run("docker-options:report", new).stdout.count(f"--link dokku.postgres.{svc}:dokku-postgres-{svc}") == 3
    res = subprocess.run(["docker", "exec", f"{new}.web.1", "getent", "hosts", f"dokku-postgres-{svc}"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip()

    assert h.run("apps:clone", "--skip-deploy", new, twin).returncode == 0
    assert h.run("postgres:info", svc, "--links").stdout == " ".join(sorted([new, twin])) + " \n"
    assert h.run("postgres:unlink", svc, new, "--no-restart").returncode == 0
    assert h.run("postgres:info", svc, "--links").stdout == f"{twin} \n"


def test_global_vhost_names_new_apps_and_follows_renames_and_clones(harness):
    h = harness
    assert h.run("domains:set-global", "apps.example.test").stdout == "-----> Set apps.example.test\n"
    app = h.unique("tvh")
    created = h.run("apps:create", app)
    assert "Global server virtual host not set" not in created.stdout
    assert h.run("domains:report", app, "--domains-app-vhosts").stdout.strip() == f"{app}.apps.example.test"
    assert h.run("domains:report", app, "--domains-global-vhosts").stdout.strip() == "apps.example.test"
    h.run("domains:add", app, "custom.example.test")
    renamed, cloned = h.unique("tvh"), h.unique("tvh")
    assert h.run("apps:rename", "--skip-deploy", app, renamed).returncode == 0
    assert h.run("domains:report", renamed, "--domains-app-vhosts").stdout.split() == [
        f"{renamed}.apps.example.test", "custom.example.test",
    ]
    assert h.run("apps:clone", "--skip-deploy", renamed, cloned).returncode == 0
    assert h.run("domains:report", cloned, "--domains-app-vhosts").stdout.strip() == f"{cloned}.apps.example.test"
    assert h.run("domains:clear-global").returncode == 0
    plain = h.unique("tvh")
    assert "Global server virtual host not set" in h.run("apps:create", plain).stdout
    assert h.run("domains:report", plain, "--domains-app-vhosts").stdout.strip() == ""


# ---- the dispatcher's lazy imports ----------------------------------------------------------

def test_every_core_command_is_found_through_its_namespace():
    """cli.NAMESPACES lets a command import only the modules of its namespace; a command missing
    from it would fall through to "is not a dokku command"."""
    import importlib

    from harness import cli

    modules = ["apps", "certs", "config", "cron", "deploy", "git", "nginx", "plugins", "postgres", "scheduler"]
    defined = {}
    for name in modules:
        for command, function in importlib.import_module(f"harness.{name}").COMMANDS.items():
            defined[command] = function
    assert defined, "no harness module defines a command"
    for command, function in defined.items():
        assert cli.core_command(command) is function, command
    from harness import plugins

    assert cli.core_command("help") is plugins.help_cmd
    assert cli.core_command("powersync:list") is None
    assert cli.core_command("apps:no-such-sub") is None


def test_every_builtin_trigger_provider_is_imported_when_it_fires():
    import importlib

    from harness import triggers

    for name in ["apps", "certs", "config", "cron", "deploy", "git", "nginx", "plugins", "postgres", "scheduler"]:
        importlib.import_module(f"harness.{name}")
    registered = {trigger: {function.__module__.rsplit(".", 1)[1] for _, function in providers}
                  for trigger, providers in triggers.BUILTIN.items()}
    assert registered, "no harness module registers a built-in trigger provider"
    assert registered == {trigger: set(modules) for trigger, modules in triggers.BUILTIN_MODULES.items()}
