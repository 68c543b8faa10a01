"""Golden scripts: every shipped recipe and experiment, for each site and runtime, rendered as orch renders it.

``python tests/golden.py`` (or ``scripts/update-golden``) writes them into
``tests/golden/``; ``tests/test_golden.py`` compares them byte for byte. The
orch version is left out (``<version>`` stands for it), so a release changes
no golden file; ids and paths are fixed, so nothing else varies between runs.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOLDEN = HERE / "golden"
RECIPES = sorted((ROOT / "recipes" / "services").glob("*.yaml")) + sorted((ROOT / "recipes" / "clients").glob("*.yaml"))
EXPERIMENTS = sorted((ROOT / "recipes" / "experiments").glob("*.yaml"))
# recipes kept only to pin rendered forms the shipped ones do not use (node lists, constraints)
PINNED = [HERE / "recipes" / "node_selection.yaml"]
SITES = ("meluxina", "local")
RUNTIMES = ("apptainer", "charliecloud", "host")
# where a golden run lives: fixed, so that scripts do not depend on the machine
RUNS = "/orch-home/runs"
RUN_ID = "golden00"
# the interpreter a client's load generator runs with: fixed, like the paths
PYTHON = "/opt/orch/venv/bin/python3"


def without_version(script):
    """The script with orch's version replaced by ``<version>``."""
    from orch import __version__

    return script.replace("orch %s" % __version__, "orch <version>")


def recipe_scripts(path, site, runtime):
    """``{file name: script}`` of one recipe (its ``monitoring:`` part too, when it has one)."""
    from orch import render_job
    from orch.recipe import load_job

    parts = (None, "monitoring") if "\nmonitoring:" in "\n" + path.read_text() else (None,)
    scripts = {}
    for part in parts:
        job = load_job(path, site=site, runtime=runtime, job_id=RUN_ID, part=part, python=PYTHON)
        suffix = "" if part is None else "-" + part
        scripts["%s%s.sbatch" % (path.stem, suffix)] = render_job(job)
    return scripts


def experiment_scripts(path, site, runtime):
    """``{file name: script}`` of an experiment: each member as ``orch run`` renders it, and the conductor."""
    from orch.experiment_jobs import experiment_scripts as scripts_of
    from orch.experiments import parse_experiment

    experiment = parse_experiment(path.read_text(), str(path), site=site, runtime=runtime)
    scripts = scripts_of(experiment, RUN_ID, RUNS, site=site, runtime=runtime, member_id=lambda index: "m%d" % index,
                         job_id=lambda index: str(1000 + index), started=1700000000, python=PYTHON)
    return {"%s-%s.sbatch" % (path.stem, name): script for name, script in scripts.items()}


def cases():
    """``(relative path under tests/golden, script)`` for every golden file, in a fixed order."""
    for site in SITES:
        for runtime in RUNTIMES:
            folder = "%s-%s" % (site, runtime)
            for path in RECIPES + PINNED:
                for name, script in recipe_scripts(path, site, runtime).items():
                    yield "%s/%s" % (folder, name), without_version(script)
            for path in EXPERIMENTS:
                for name, script in experiment_scripts(path, site, runtime).items():
                    yield "%s/%s" % (folder, name), without_version(script)


def update():
    """Write every golden file anew, and remove those no case makes any more; return the paths written."""
    written = []
    wanted = set()
    for relative, script in cases():
        target = GOLDEN / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(script)
        wanted.add(target)
        written.append(target)
    for old in GOLDEN.glob("*/*.sbatch"):
        if old not in wanted:
            old.unlink()
    return written


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    paths = update()
    print("wrote %d golden scripts under %s (review them with git diff)" % (len(paths), GOLDEN.relative_to(ROOT)))
