class DomainError(Exception):
    """A refusal a person can act on: the message names the problem and the fix."""

    exit_code = 1


class UsageProblem(DomainError):
    """Bad arguments (Dokku exits 2 for flag errors, 1 for other validation)."""


class ConcurrencyError(DomainError):
    """Another command changed the instance between our read and our append."""
