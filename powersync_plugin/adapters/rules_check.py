"""Rules checked by the pinned image's own parser in a one-off container, for an instance that
does not run (real-host finding 7): the same verdict the service gives for parse errors.

The container has no network and is removed afterwards. The rules travel as a file copied in
before start, never on a command line (512 KiB rules would pass the 128 KiB argument limit).
"""
from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass

# Runs in a one-off container of the instance's image: the service's own rules parser
# (@powersync/service-sync-rules) gives the verdict the service would give at start-up or on its
# validate endpoint (`fromYaml` with `defaultSchema: 'public'`, throwing on fatal errors; no live
# schema). The parser is found the way the service finds it: from service/ (the entrypoint's
# directory under the image's WORKDIR) through @powersync/service-core, as in the real image's
# pnpm workspace (service/Dockerfile upstream); a flat node_modules under service/ second.
_RULES_CHECK_SCRIPT = r"""
const fs = require('fs'), path = require('path'), {createRequire} = require('module'), {pathToFileURL} = require('url');
const say = (o) => process.stdout.write(JSON.stringify(o));
function locate() {
  const fromService = createRequire(path.resolve('service', 'package.json'));
  try {
    return createRequire(fromService.resolve('@powersync/service-core')).resolve('@powersync/service-sync-rules');
  } catch (e) {
    return fromService.resolve('@powersync/service-sync-rules');
  }
}
(async () => {
  let parser;
  try {
    parser = (await import(pathToFileURL(locate()).href)).SqlSyncRules;
    if (!parser || typeof parser.fromYaml !== 'function') throw new Error('SqlSyncRules.fromYaml is missing');
  } catch (e) {
    return say({unavailable: String(e && e.message || e).split('\n')[0]});
  }
  try {
    parser.fromYaml(fs.readFileSync(process.argv[1], 'utf8'), {defaultSchema: 'public'});
    say({errors: []});
  } catch (e) {
    const all = Array.isArray(e && e.errors) ? e.errors : [e];
    const fatal = all.filter((x) => !x || x.type !== 'warning');
    say({errors: (fatal.length ? fatal : all).map((x) => String(x && x.message || x))});
  }
})();
"""
_RULES_CHECK_DIR = "/tmp"
_RULES_CHECK_FILE = "dokku-powersync-rules.yaml"
LABEL_RULES_CHECK = "com.dokku.powersync.rules-check"


@dataclass(frozen=True)
class RulesVerdict:
    """The image's own parser on some rules: `errors` empty = accepted; `problem` set = the check
    could not run (no verdict)."""
    errors: tuple[str, ...] = ()
    problem: str = ""


def run_rules_check(client, image: str, content: str, owner: str, timeout: float) -> RulesVerdict:
    import docker.errors

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        raw = content.encode()
        info = tarfile.TarInfo(_RULES_CHECK_FILE)
        info.size, info.mode, info.mtime = len(raw), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(raw))
    container = None
    try:
        container = client.containers.create(
            image,
            entrypoint=["node"],
            command=["-e", _RULES_CHECK_SCRIPT, f"{_RULES_CHECK_DIR}/{_RULES_CHECK_FILE}"],
            network_mode="none",
            labels={LABEL_RULES_CHECK: owner},
        )
        container.put_archive(_RULES_CHECK_DIR, archive.getvalue())
        container.start()
        try:
            exit_code = int(container.wait(timeout=timeout).get("StatusCode", -1))
        except Exception:  # requests' ReadTimeout / ConnectionError: the SDK does not wrap them
            return RulesVerdict(problem=f"the parser gave no answer within {timeout:.0f} s")
        output = container.logs(stdout=True, stderr=False).decode(errors="replace")
        error_tail = container.logs(stdout=False, stderr=True, tail=3).decode(errors="replace").strip()
    except docker.errors.ImageNotFound:
        return RulesVerdict(problem=f"image {image} is not on this host")
    except docker.errors.APIError as exc:
        return RulesVerdict(problem=f"Docker refused the check container: {exc.explanation or exc}")
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except docker.errors.APIError:
                pass
    try:
        parsed = json.loads(output)
    except ValueError:
        detail = error_tail.splitlines()[-1] if error_tail else "no output"
        return RulesVerdict(problem=f"`node` in {image} exited {exit_code}: {detail}")
    if parsed.get("unavailable"):
        return RulesVerdict(problem=f"{image} has no usable @powersync/service-sync-rules ({parsed['unavailable']})")
    return RulesVerdict(errors=tuple(str(e) for e in parsed.get("errors") or ()))
