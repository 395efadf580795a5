"""Read what the plugin did: the call log of one harness root.

``Harness(root).calls()`` -> every ``dokku``/``plugn`` invocation (dicts, see calllog.py), in
start order. ``deploys(app)`` -> every deploy cycle of ``app`` (a new web container was started:
``git:from-image``, ``ps:rebuild``, restarts, ``ps:start``), failed ones included, in order; each
has ``kind`` (deploy|rebuild|restart|start), ``reason`` (the command that caused it, e.g.
``config:set``, ``postgres:link``, ``plugn:config-set``), ``outcome`` (deployed|failed), ``new``
/ ``old`` container ids, ``checks`` (app.json|default|skipped|disabled), ``started``/``ended``.
``restarts(app)`` -> the deploy cycles that restarted an existing release (kind restart/start).
``triggers(name)`` -> every trigger firing the harness made (with the call that made it).
"""
from __future__ import annotations

import json
from pathlib import Path

from . import calllog


class Harness:
    def __init__(self, root):
        self.root = Path(root)

    def calls(self, tool: str | None = None) -> list[dict]:
        records = calllog.read(self.root / "calls.jsonl")
        return [r for r in records if tool is None or r["tool"] == tool]

    def commands(self) -> list[list[str]]:
        """argv of every ``dokku`` call, in order (``plugn`` calls excluded)."""
        return [r["argv"] for r in self.calls("dokku")]

    def deploys(self, app: str | None = None) -> list[dict]:
        events = [dict(e, call=r["argv"]) for r in self.calls() for e in r["deploys"]]
        events.sort(key=lambda e: e["started"])
        return [e for e in events if app is None or e["app"] == app]

    def restarts(self, app: str | None = None) -> list[dict]:
        return [e for e in self.deploys(app) if e["kind"] in ("restart", "start")]

    def triggers(self, name: str | None = None) -> list[dict]:
        fired = [dict(t, call=r["argv"], user=r["user"]) for r in self.calls() for t in r["triggers"]]
        fired.sort(key=lambda t: t["at"])
        return [t for t in fired if name is None or t["name"] == name]

    def app_state(self, app: str) -> dict:
        """The harness's record of an app: ports, domains, resource, storage, docker_options,
        checks, network, deploy (source_image, deployed, app_json), letsencrypt (+ count)."""
        return json.loads((self.root / "home/dokku" / app / "harness-app.json").read_text())

    def config(self, app: str) -> dict:
        """The app's config vars (values in clear: never put them in snapshots)."""
        path = self.root / "var/lib/dokku/config" / app / "env.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def proxy_url(self, scheme: str = "http") -> str:
        """Where the harness's nginx (``make_harness(proxy=True)``) listens for port 80 / 443:
        ``http://127.0.0.1:<published port>``. Send the app's domain as the Host header."""
        info = json.loads((self.root / "var/lib/dokku/data/nginx-vhosts/harness-proxy.json").read_text())
        return f"{scheme}://127.0.0.1:{info['ports']['443' if scheme == 'https' else '80']}"

    def proxy_request(self, host: str, path: str, method: str = "GET", headers: dict | None = None,
                      body: bytes | str | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
        """One HTTP request through the harness's nginx port 80 with ``Host: host``: (status,
        headers, body); status 0 when nginx closed the connection without a response (444)."""
        import http.client
        port = int(self.proxy_url().rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return 0, {}, b""
        finally:
            conn.close()

    def nginx_conf(self, app: str) -> str | None:
        """``$DOKKU_ROOT/APP/nginx.conf`` as the harness's nginx-vhosts rendered it, or None."""
        path = self.root / "home/dokku" / app / "nginx.conf"
        return path.read_text() if path.exists() else None

    def nginx_reloads(self) -> int:
        path = self.root / "var/lib/dokku/data/nginx-reloads"
        return int(path.read_text()) if path.exists() else 0
