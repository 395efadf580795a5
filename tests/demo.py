"""The plugin doing its main job, on the Dokku harness with the PowerSync stand-in and a real Postgres.

Run through `bash tests/demo` (which prepares the machine first).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from powersync_plugin.core.derive import sign_hs256  # noqa: E402
from tests.harness.fixture import make_harness  # noqa: E402
from tests.images.names import STANDIN_REPO  # noqa: E402

RULES = """bucket_definitions:
  by_user:
    parameters: SELECT token_parameters.user_id AS user_id
    data:
      - SELECT * FROM todos WHERE owner_id = bucket.user_id
"""
SECRET_KEY = "demo-" + "s3cr3t" * 8


def show(h, *args, input=None, expect=0):
    print(f"\n$ dokku {' '.join(args)}" + (" < rules" if input else ""), flush=True)
    result = h.run(*args, input=input)
    for stream in (result.stdout, result.stderr):
        if stream.strip():
            print(stream.rstrip())
    if expect is not None and result.returncode != expect:
        print(f"!! exit {result.returncode}, expected {expect}")
        raise SystemExit(1)
    return result


def main() -> None:
    h = make_harness()
    try:
        print(f"-----> Harness root {h.root}")
        result = h.install_plugin()
        print(result.stdout.rstrip(), result.stderr.rstrip(), sep="\n")
        if result.returncode != 0:
            raise SystemExit(1)
        show(h, "postgres:create", "demo-db", "--config-options", "-c wal_level=logical")
        show(h, "postgres:connect", "demo-db", input="CREATE TABLE todos (id text primary key, owner_id text, title text);\nCREATE PUBLICATION powersync FOR ALL TABLES;\n")
        show(h, "apps:create", "demo")
        show(h, "postgres:link", "demo-db", "demo")
        h.run("config:set", "--no-restart", "demo", f"SECRET_KEY={SECRET_KEY}")
        print("\n$ dokku config:set --no-restart demo SECRET_KEY=...   (the backend's secret)")
        show(h, "powersync:create", "demo-powersync", "--memory", "400m", "--image", STANDIN_REPO)
        show(h, "domains:set", "demo-powersync", "sync.demo.example")
        show(h, "powersync:set-rules", "demo-powersync", input=RULES)
        show(h, "powersync:link", "demo-powersync", "demo", "--kid", "demo-key")
        show(h, "config:get", "demo", "POWERSYNC_URL")
        show(h, "powersync:info", "demo-powersync")
        now = int(time.time())
        token = sign_hs256(SECRET_KEY.encode(), {"sub": "user-1", "user_id": "user-1", "aud": "demo", "iat": now, "exp": now + 300}, "demo-key")
        print("\n-----> A client opens a sync stream with a token the backend signed (inside the instance container)")
        import docker

        container = docker.from_env().containers.get("demo-powersync.web.1")
        script = (
            "fetch('http://127.0.0.1:8080/sync/stream',{method:'POST',headers:{Authorization:'Token '+process.argv[1],"
            "'Content-Type':'application/json'},body:'{}'}).then(async r=>{console.log('HTTP',r.status);"
            "const t=await r.text();console.log(t.split('\\n').slice(0,2).join('\\n'))})"
        )
        print(container.exec_run(["node", "-e", script, token]).output.decode().rstrip())
        show(h, "powersync:set-rules", "demo-powersync", input=RULES + "  # a comment is a change\n")
        show(h, "postgres:connect", "demo-db", input="SELECT slot_name FROM pg_replication_slots;\n")
        show(h, "powersync:status", "--all")  # every instance on the host at a glance
        show(h, "powersync:unlink", "demo-powersync", "demo")
        show(h, "postgres:connect", "demo-db", input="SELECT count(*) AS slots_left FROM pg_replication_slots;\n")
        show(h, "powersync:destroy", "demo-powersync", "--force")
        show(h, "powersync:history", "demo-powersync")
        print(f"\n-----> Restarts caused: demo-powersync {len(h.restarts('demo-powersync'))}, demo {len(h.restarts('demo'))}")
    finally:
        h.cleanup()


if __name__ == "__main__":
    main()
