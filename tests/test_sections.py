"""orch's shell helpers (orch/sections/helpers.sh): shellcheck-clean on their own, and doing what they say."""
import subprocess

import pytest

from conftest import shellcheck
from orch.sections.shell import helper_lines, helper_text


def test_the_helpers_file_passes_shellcheck_on_its_own():
    assert shellcheck(helper_text()) == ""


def test_every_block_is_bash_and_the_header_stays_out_of_scripts():
    for name in ("write", "preamble", "client_progress"):
        lines = helper_lines(name)
        assert lines and not any(line.startswith("#@") or "shellcheck" in line for line in lines), name
        assert lines[-1].strip(), "%s ends with a blank line" % name


def _bash(script, tmp_path):
    helpers = "\n".join(helper_lines("write"))
    return subprocess.run(["bash", "-c", helpers + "\n" + script], cwd=tmp_path, capture_output=True, text=True, timeout=30)


def test_orch_write_replaces_the_file_whole(tmp_path):
    (tmp_path / "f.json").write_text("old\n")
    result = _bash('orch_write "$PWD/f.json" printf "%s\\n" new', tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "f.json").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


@pytest.mark.parametrize("command", ["false", "sh -c 'echo half; exit 3'"])
def test_orch_write_keeps_the_old_file_when_the_command_fails(tmp_path, command):
    (tmp_path / "f.json").write_text("old\n")
    result = _bash('orch_write "$PWD/f.json" %s; echo "status $?"' % command, tmp_path)
    assert result.stdout.strip().endswith("status 1")
    assert (tmp_path / "f.json").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"], "a temporary file was left behind"


def test_orch_write_fails_and_leaves_nothing_in_a_missing_directory(tmp_path):
    result = _bash('orch_write "$PWD/nowhere/f.json" echo x; echo "status $?"', tmp_path)
    assert result.stdout.strip().endswith("status 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_orch_write_takes_a_bare_file_name_too(tmp_path):
    result = _bash('orch_write f.json printf "%s\\n" new; echo "status $?"', tmp_path)
    assert result.stdout.strip().endswith("status 0"), result.stderr
    assert (tmp_path / "f.json").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
