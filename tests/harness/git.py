"""``git:report``: Dokku keeps the image ``git:from-image`` deployed as the app's git source-image.

Modelled on Dokku 0.38's ``git:report`` keys (``--git-source-image`` prints the raw value, empty
before any ``git:from-image``); the other keys carry Dokku's defaults, since the harness has no
git push deploys.
"""
from __future__ import annotations

from . import state
from .output import report


def git_report(args):
    pos = [a for a in args if not a.startswith("--")]
    app = state.require_app(pos[0]) if pos else None
    if app is None:
        from .output import fail

        fail("Please specify an app to run the command on")
    data = state.load_app(app)
    rows = {
        "git-deploy-branch": "master",
        "git-global-deploy-branch": "master",
        "git-keep-git-dir": "false",
        "git-rev-env-var": "GIT_REV",
        "git-sha": "",
        "git-source-image": data.get("deploy", {}).get("source_image") or "",
        "git-last-updated-at": "",
    }
    report(app, "git information", rows, None, [a for a in args if a != app])
    return 0


COMMANDS = {"git:report": git_report}
