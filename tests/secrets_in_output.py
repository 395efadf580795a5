"""A failing test prints no secret.

When an assert fails, pytest prints the values it compared, the `where` clauses of the
expressions around them (a `CompletedProcess` with its arguments and output), the assert's own
message, `pytest.fail` texts, captured output and, under `-l`, locals. In this suite those hold
journal rows (an instance's API token in its payloads), config exports and container env
(SECRET_KEY, PS_SECRET_KEY_B64, DSNs with passwords), JWTs. The hooks below, registered by
tests/conftest.py (and by `-p tests.secrets_in_output`), pass all of it through `redact`:

- `pytest_assertrepr_compare` redacts the compared values *before* pytest renders its diff, and
  `pytest_configure` does the same for the values of `where` clauses: pytest cuts long reprs in
  the middle, which could part a secret from the name that gives it away;
- `pytest_runtest_makereport` redacts the report as text: the assert's own message,
  `pytest.fail` texts, exceptions, locals and captured output, which no compare hook sees.

A redacted value reads `<redacted: 43 chars, sha256 1a2b3c4d>`: a diff still tells two secrets
apart (a rotated token) and shows the same one as the same, without showing either.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import subprocess

import pytest

from powersync_plugin.redact import MASK, Redactor

# Names whose values are secret: config vars (SECRET_KEY, PS_API_TOKEN, PS_SECRET_KEY_B64,
# POWERSYNC_CONFIG_B64, POSTGRES_PASSWORD), payload fields (api_token, source_role_password) and
# config keys (a JWK's `k`, `password`). URIs are not named here: only their password is secret,
# and the DSN pattern of powersync_plugin/redact.py masks it.
_SECRET_NAME = re.compile(r"secret|pass(word|wd)?|token|key|_b64$|^k$", re.IGNORECASE)
_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
# A value as it ends in text and in reprs: before whitespace, a quote, a backslash (an escaped
# quote or newline inside a repr), a comma or a closing bracket. Neither a YAML tag
# (`k: !env NAME`) nor a mask.
_VALUE = r"(?!<redacted)(?!!)[^\s'\"\\,;)\]}]+"
_QUOTED_PAIR = re.compile(  # "api_token": "...", 'SECRET_KEY': '...', and JSON inside a repr
    rf"(?P<q>\\*[\"'])(?P<name>{_NAME})(?P=q)\s*:\s*(?P<vq>\\*[\"'])(?P<value>(?!<redacted).+?)(?P=vq)"
)
_ASSIGNMENT = re.compile(rf"\b(?P<name>{_NAME})=(?P<vq>\\*[\"']?)(?P<value>{_VALUE})")  # env, argv, export
_LISTING = re.compile(rf"\b(?P<name>{_NAME}):[ \t]+(?P<value>{_VALUE})")  # config:show, YAML
# A run of token characters as secrets.token_urlsafe and base64 write them, letters and digits
# mixed. Hex runs (container and image ids, digests, fingerprints) are not secrets here, nor
# names made of words, numbers and hex (`test_a_failur0`, `dokku-postgres-db-3fa21c`): they stay.
_TOKEN_LIKE = re.compile(r"(?<![\w+-])[\w+-]{24,}={0,2}(?![\w+=-])")
_HEX = re.compile(r"[0-9a-fA-F-]+=*")
_WORD = re.compile(r"(?:[A-Z]?[a-z]*|[A-Z]+)[0-9]*|[0-9a-f]+")

_SQL_PASSWORD = re.compile(r"\bPASSWORD\s+'((?:[^']|'')*)'", re.IGNORECASE)

_known = Redactor()


def known(value: str) -> str:
    """A secret whose shape gives it away to no pattern (`"k" * 64`, a DSN's 32-hex password on
    its own): from now on it is masked wherever it appears. Returns it."""
    _known.add(value)
    return value


def learn_from_command(args, stdin: str | None, stdout: str) -> None:
    """What a test hands Dokku or reads back through it (the harness's `run`) makes secrets
    known: values of arguments named like secrets (`config:set ... SECRET_KEY=...`), the value
    `config:get` prints for such a name, the passwords of DSNs and SQL `PASSWORD '...'` and the
    JWTs in arguments, stdin and output. A test that asserts on them bare (`password not in
    result.stdout`) then fails without showing them."""
    args = [str(arg) for arg in args]
    for arg in args:
        name, assigned, value = arg.partition("=")
        if assigned and _SECRET_NAME.search(name):
            known(value)
    if len(args) >= 3 and args[0] == "config:get" and _SECRET_NAME.search(args[-1]):
        known(stdout.strip())
    for text in (*args, stdin or "", stdout):
        Redactor().text(text, mask=known)  # its patterns hand each DSN password and JWT over
        for match in _SQL_PASSWORD.finditer(text):
            known(match.group(1).replace("''", "'"))


def mask(secret: str | bytes) -> str:
    if secret == MASK:  # the plugin's own mask (`postgres://u:*****@h`) says what it says
        return MASK
    raw = secret.encode("utf-8", "surrogateescape") if isinstance(secret, str) else secret
    return f"<redacted: {len(secret)} chars, sha256 {hashlib.sha256(raw).hexdigest()[:8]}>"


def _masked_value(match: re.Match) -> str:
    if not _SECRET_NAME.search(match.group("name")):
        return match.group(0)
    start, end = match.span("value")
    whole = match.group(0)
    return whole[: start - match.start()] + mask(match.group("value")) + whole[end - match.start():]


def _token_like(match: re.Match) -> str:
    run = match.group(0)
    mixed = any(c.isalpha() for c in run) and any(c.isdigit() for c in run)
    words = all(_WORD.fullmatch(part) for part in re.split(r"[_-]+", run.rstrip("=")))
    return mask(run) if mixed and not words and not _HEX.fullmatch(run) else run


def redact_text(text: str) -> str:
    text = _known.text(text, mask=mask)
    for pattern in (_QUOTED_PAIR, _ASSIGNMENT, _LISTING):
        text = pattern.sub(_masked_value, text)
    return _TOKEN_LIKE.sub(_token_like, text)


def redact(value):
    """A copy of `value` fit to print: values under secret names masked whole, every string
    passed through `redact_text`, containers walked. Other objects are returned as they are."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return {
            key: mask(item) if isinstance(key, str) and _SECRET_NAME.search(key) and isinstance(item, (str, bytes)) and item
            else redact(item)
            for key, item in value.items()
        }
    if type(value) in (list, tuple, set, frozenset):
        return type(value)(redact(item) for item in value)
    if isinstance(value, subprocess.CompletedProcess):
        return subprocess.CompletedProcess(redact(value.args), value.returncode, redact(value.stdout), redact(value.stderr))
    return value


def pytest_configure(config: pytest.Config) -> None:
    """Two renderings no hook reaches cut long reprs in the middle, where a secret can lose the
    name that gives it away: the assertion rewriter's `_saferepr`, for the values of a failing
    assert's `where` clauses (`where 1 = CompletedProcess(args=[..., 'SECRET_KEY=...'],
    stdout=...).returncode`), and the traceback's locals under `-l`. Both render redacted copies
    instead. A pytest that renames either fails here, loudly, rather than printing secrets."""
    from _pytest._code.code import ExceptionInfoFormatter
    from _pytest.assertion import rewrite

    shown, locals_shown = rewrite._saferepr, ExceptionInfoFormatter.repr_locals
    rewrite._saferepr = lambda value: shown(redact(value))
    ExceptionInfoFormatter.repr_locals = lambda self, names: locals_shown(self, {name: redact(value) for name, value in names.items()})

    def restore():
        rewrite._saferepr, ExceptionInfoFormatter.repr_locals = shown, locals_shown

    config.add_cleanup(restore)


def _short_repr(value, verbose: bool) -> str:
    text = repr(value)
    return text if verbose or len(text) <= 240 else text[:120] + "..." + text[-117:]


_explaining = False


def pytest_assertrepr_compare(config: pytest.Config, op: str, left, right):
    """pytest's own explanation of the comparison, made from redacted copies of both sides.
    Nothing when neither side holds a secret: pytest's explanation then keeps its `where`
    clauses, which `pytest_runtest_makereport` redacts."""
    global _explaining
    if _explaining:
        return None  # the call below, asking pytest's own implementation
    safe_left, safe_right = redact(left), redact(right)
    try:
        unchanged = safe_left == left and safe_right == right
    except Exception:
        unchanged = False
    if unchanged:
        return None
    _explaining = True
    try:
        for lines in config.hook.pytest_assertrepr_compare(config=config, op=op, left=safe_left, right=safe_right):
            if lines:
                return lines
    finally:
        _explaining = False
    verbose = config.get_verbosity(pytest.Config.VERBOSITY_ASSERTIONS) > 1
    return [f"{_short_repr(safe_left, verbose)} {op} {_short_repr(safe_right, verbose)}"]


def _is_source(line: str) -> bool:
    # A traceback entry quotes the test's source ("    code", ">   failing line") between its
    # "E   " lines: the source is in the repository and stays as written.
    return line.startswith(("    ", ">   "))


def _redact_terminal_repr(node, seen: set[int]):
    """pytest's report of a failure is a tree of dataclasses (traceback entries, their lines,
    locals, the crash message) over strings: each string but quoted source is redacted in place."""
    if isinstance(node, str):
        return node if _is_source(node) else redact_text(node)
    if isinstance(node, (list, tuple)):
        return type(node)(_redact_terminal_repr(item, seen) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type) and id(node) not in seen:
        seen.add(id(node))
        for field in dataclasses.fields(node):
            setattr(node, field.name, _redact_terminal_repr(getattr(node, field.name), seen))
    return node


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    report.longrepr = _redact_terminal_repr(report.longrepr, set())
    report.sections = [(title, redact_text(content)) for title, content in report.sections]
    return report
