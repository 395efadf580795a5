"""Names of the local images tests/images/build makes (the build script repeats them in bash).

The PowerSync stand-in lives under a repository of its own, never under the real
``journeyapps/powersync-service``: the test suite may run on a real Dokku host, and there that
repository's version tags are the images production instances run. Building (or cleaning up) a
stand-in under that name would silently replace one. For the same reason no test
image is tagged ``postgres:*`` (dokku-postgres's image). Tests create instances with
``powersync:create --image STANDIN_REPO``; the plugin's default image is untouched.
"""
BASE_IMAGE = "dokku-powersync-test/debian:bookworm"
PG_IMAGE = "dokku-powersync-test/postgres:15"
NGINX_IMAGE = "dokku-powersync-test/nginx:bookworm"
STANDIN_REPO = "dokku-powersync-test/powersync-service"
STANDIN_VERSIONS = ("1.25.0", "1.26.0")
STANDIN_IMAGE = f"{STANDIN_REPO}:{STANDIN_VERSIONS[0]}"
STANDIN_IMAGES = tuple(f"{STANDIN_REPO}:{version}" for version in STANDIN_VERSIONS)
