"""Build the harness test images (labelled dokku-powersync-test=1):
``dokku-powersync-test/harness-web:ready`` (app.json startup check on /ready),
``:failing`` (startup check on /fail), ``:uptime`` (/ready plus an ``uptime: 5`` check) and
``:plain`` (app.json without checks)."""
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = "dokku-powersync-test/harness-web"
VARIANTS = {"ready": "ready.json", "failing": "failing.json", "uptime": "uptime.json", "plain": "none.json"}


def build(base: str = "dokku-powersync-test/powersync-service:1.25.0") -> dict:
    tags = {}
    for variant, app_json in VARIANTS.items():
        tag = f"{REPO}:{variant}"
        before = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True,
                                text=True).stdout.strip()
        subprocess.run(["docker", "build", "-q", "--label", "dokku-powersync-test=1", "--build-arg", f"BASE={base}",
                        "--build-arg", f"APP_JSON={app_json}", "-t", tag, str(HERE)],
                       check=True, capture_output=True, env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})
        tags[variant] = tag
        after = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True,
                               text=True).stdout.strip()
        if before and before != after:
            subprocess.run(["docker", "image", "rm", before], capture_output=True)
    return tags


if __name__ == "__main__":
    print(build())
