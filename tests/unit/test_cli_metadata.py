"""Every command has help and is documented in the README, both generated from click."""
from pathlib import Path

import pytest

from powersync_plugin.cli import cli
from powersync_plugin.entry import main
from powersync_plugin.usage import dokku_help, readme_with_reference

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_up_to_date():
    text = README.read_text()
    assert readme_with_reference(text, cli) == text, "run: python -m powersync_plugin.help_text readme-write README.md"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_and_is_in_the_readme(name):
    command = cli.commands[name]
    assert command.help and command.help.strip()
    assert f"### `powersync:{name}`" in README.read_text()


def test_dokku_help_lines_have_one_comma():
    for line in dokku_help(cli).splitlines():
        assert line.startswith("    powersync:") and line.count(",") == 1


def test_unknown_flag_exits_2_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["powersync:create", "x", "--bogus"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert " !     No such option '--bogus'" in err and "Usage: dokku powersync:create" in err


def test_invalid_name_exits_1_before_touching_anything(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("POWERSYNC_DATA_ROOT", str(tmp_path / "nothing-here"))
    with pytest.raises(SystemExit) as exit_info:
        main(["powersync:create", "../etc"])
    assert exit_info.value.code == 1
    assert "Invalid instance name" in capsys.readouterr().err
    assert not (tmp_path / "nothing-here").exists()
