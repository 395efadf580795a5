"""A stand-in for Dokku 0.38 + dokku-postgres 1.48 for tests: ``bin/dokku`` and ``bin/plugn``
executables backed by this package, real containers through the real Docker engine.

Use from tests through :mod:`fixture` (``make_harness``); read the call log with
:class:`calls.Harness`.
"""
