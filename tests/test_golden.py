"""Every shipped recipe and experiment renders byte for byte as its golden file in tests/golden/.

A change that alters a script fails here until the golden files are written anew
with ``scripts/update-golden`` and the difference is reviewed in ``git diff``.
"""
import difflib

import pytest

import golden

CASES = list(golden.cases())


@pytest.mark.parametrize("relative,script", CASES, ids=[relative for relative, _ in CASES])
def test_script_is_its_golden_file(relative, script):
    path = golden.GOLDEN / relative
    assert path.exists(), "%s is missing: scripts/update-golden writes it" % relative
    expected = path.read_text()
    if script != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), script.splitlines(True), "golden", "rendered", n=2))
        pytest.fail("%s differs from its golden file (scripts/update-golden, then review git diff):\n%s" % (relative, diff[:4000]))


def test_every_golden_file_has_a_case():
    made = {relative for relative, _ in CASES}
    stale = sorted(str(p.relative_to(golden.GOLDEN)) for p in golden.GOLDEN.glob("*/*.sbatch") if str(p.relative_to(golden.GOLDEN)) not in made)
    assert not stale, "golden files no case renders (scripts/update-golden removes them): %s" % stale


def test_golden_files_carry_no_version_and_every_site_and_runtime():
    folders = {p.name for p in golden.GOLDEN.iterdir() if p.is_dir()}
    assert folders == {"%s-%s" % (s, r) for s in golden.SITES for r in golden.RUNTIMES}
    from orch import __version__

    assert all("orch %s" % __version__ not in script for _, script in CASES)
    assert all("# rendered by orch <version>:" in script for relative, script in CASES if "conductor" not in relative)
