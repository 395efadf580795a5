"""Slot prefixes and storage database names: valid for Postgres, and never shared by two names."""
import itertools
import re

import pytest

from powersync_plugin.core.errors import DomainError, UsageProblem
from powersync_plugin.core.names import (
    check_app_name, check_existing_app_name, check_slot_prefix, is_own_slot, slot_prefix, storage_database,
)
from powersync_plugin.source_database import psql_variables


def test_dokku_app_names_with_dots_are_accepted():
    assert check_app_name("acc.dot") == "acc.dot"
    assert check_existing_app_name("old_app") == "old_app"
    for bad in ("Upper", "-lead", "under_score", "sp ace", "semi;colon", "quo'te"):
        with pytest.raises(UsageProblem):
            check_app_name(bad)


def test_prefixes_and_databases_are_injective_and_valid():
    alphabet = "a1.-"
    names = ["a" + "".join(p) for n in range(0, 4) for p in itertools.product(alphabet, repeat=n)]
    prefixes = {slot_prefix(name) for name in names}
    databases = {storage_database(name) for name in names}
    assert len(prefixes) == len(names) and len(databases) == len(names)
    assert all(re.fullmatch(r"[a-z0-9_]+", prefix) for prefix in prefixes)
    assert slot_prefix("app-two") == "ps_app_two_"  # unchanged for names without dots
    assert slot_prefix("acc.dot") == "psd_acc_ddot_"
    assert len(slot_prefix("a" * 40)) + len("999_abcd") <= 63
    assert slot_prefix("sync.example-app.com") == "psd_sync_dexample_happ_dcom_"
    with pytest.raises(UsageProblem, match="use a shorter name"):
        slot_prefix("a" * 20 + "." * 20)


def test_own_slots_are_matched_exactly():
    assert is_own_slot("ps_app_", "ps_app_1_2a62")
    assert is_own_slot("ps_app_", "ps_app_12_beef")
    assert not is_own_slot("ps_app_", "ps_app_two_1_2a62")
    assert not is_own_slot("ps_app_", "ps_app_1_1_2a62")  # app-1's slot
    assert not is_own_slot("ps_app_1_", "ps_app_12_beef")  # app's slot
    assert not is_own_slot("powersync_", "powersync_1_2A62")
    assert not is_own_slot("ps_app_", "xps_app_1_2a62")


@pytest.mark.parametrize("prefix", ["", "Ps_", "ps-app_", "ps_app_'", "ps%_", "a;drop", "x" * 56, "ps\\_"])
def test_invalid_prefixes_are_refused(prefix):
    with pytest.raises(DomainError):
        check_slot_prefix(prefix)


def test_psql_variables_escape_what_psql_unescapes():
    text = psql_variables(v="it's a \\ back\nslash")
    assert text == "\\set v 'it\\'s a \\\\ back\\nslash'\n"
