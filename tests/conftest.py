"""Every test here (unit, test bed, e2e): what a failure prints passes through the redaction of
tests/secrets_in_output.py, as the plugin's own output passes through powersync_plugin/redact.py."""
from tests.secrets_in_output import (  # noqa: F401 (pytest finds the hooks by name)
    pytest_assertrepr_compare, pytest_configure, pytest_runtest_makereport,
)
