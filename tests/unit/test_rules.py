import pytest

from powersync_plugin.core.rules import MAX_RULES_BYTES, RulesRejected, check_rules, decode_rules

GOOD = "bucket_definitions:\n  global:\n    data:\n      - SELECT * FROM lists\n"


def test_good_rules_pass():
    check_rules(decode_rules(GOOD.encode()))


def test_streams_only_rules_pass():
    check_rules("streams:\n  lists:\n    query: SELECT * FROM lists\n")


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "No rules on stdin"),
        (b"  \n\n", "No rules on stdin"),
        (b"\xff\xfe bucket", "not UTF-8"),
        (b"bucket_definitions:\x00", "NUL"),
        (b"x" * (MAX_RULES_BYTES + 1), "limit"),
    ],
)
def test_undecodable_input_is_refused(raw, message):
    with pytest.raises(RulesRejected, match=message):
        decode_rules(raw)


def test_invalid_yaml_names_the_line():
    with pytest.raises(RulesRejected, match="line 3, column 1"):
        check_rules("bucket_definitions:\n  global: {}\n\tbad: 1\n")


def test_rules_without_definitions_are_refused():
    with pytest.raises(RulesRejected, match="neither `bucket_definitions` nor `streams`"):
        check_rules("foo: bar\n")


def test_custom_tags_are_refused():
    with pytest.raises(RulesRejected, match="custom YAML tag"):
        check_rules("bucket_definitions: !!python/object:os.system {}\n")
    with pytest.raises(RulesRejected, match="custom YAML tag"):
        check_rules("bucket_definitions: !env PS_X\n")


def test_yaml_bomb_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]")
    lines.append("bucket_definitions: *a11")
    with pytest.raises(RulesRejected, match="YAML bomb"):
        check_rules("\n".join(lines) + "\n")
