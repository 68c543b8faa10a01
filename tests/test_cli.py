"""The command line, as a user runs it: python -m orch ..."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, directives

REDIS = str(ROOT / "recipes/services/redis.yaml")


def orch(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "orch", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


def test_render_prints_the_script_and_creates_the_log_directory(tmp_path):
    result = orch("render", REDIS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("#!/bin/bash\n#SBATCH --job-name=redis_")
    job_name = directives(result.stdout)["job-name"]
    assert (tmp_path / "orch-runs" / job_name / "logs").is_dir()


def test_render_no_mkdir_creates_nothing(tmp_path):
    assert orch("render", REDIS, "--no-mkdir", cwd=tmp_path).returncode == 0
    assert list(tmp_path.iterdir()) == []


def test_render_options_reach_the_script(tmp_path):
    result = orch("render", REDIS, "--site", "local", "--runtime", "host", "--id", "abc", "--run-dir", "runs/x", "--no-mkdir", cwd=tmp_path)
    found = directives(result.stdout)
    assert found["job-name"] == "redis_abc" and found["output"] == "runs/x/logs/%x-%j.out"
    assert "apptainer" not in result.stdout and "account" not in found


def test_render_to_a_file(tmp_path):
    out = tmp_path / "redis.sbatch"
    result = orch("render", REDIS, "-o", str(out), "--no-mkdir", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text().startswith("#!/bin/bash\n") and os.access(out, os.X_OK)


def test_bad_recipe_prints_one_line_per_problem_nothing_on_stdout_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("service:\n  name: redis\n  resources:\n    mem: 4.5G\n  ports: [99999]\n")
    result = orch("render", str(bad), cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "%s:4: service.resources.mem: '4.5G' is not a SLURM memory size (e.g. 4G, 4096M, 16GB; no fractions)" % bad,
        "%s:5: service.ports[0]: 99999 is out of range (1-65535)" % bad,
    ]
    assert "Traceback" not in result.stderr and not (tmp_path / "orch-runs").exists()


@pytest.mark.parametrize("args", [("render", "/nonexistent.yaml"), ("render", REDIS, "--site", "mars"), ("render", REDIS, "--runtime", "docker")])
def test_bad_input_never_gives_a_traceback(args, tmp_path):
    result = orch(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_validate_reports_every_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("client:\n  name: redis_benchmark\n  parameters:\n    clients: -1\n")
    result = orch("validate", REDIS, str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == "%s: ok (service redis)\n" % REDIS
    assert result.stderr == "%s:4: client.parameters.clients: -1 is out of range (1-100000)\n" % bad


def test_validate_all_shipped_recipes():
    paths = [str(p) for p in sorted((ROOT / "recipes").glob("*/*.yaml"))]
    result = orch("validate", *paths)
    assert result.returncode == 0 and result.stdout.count(": ok (") == len(paths)
    assert "redis-study.yaml: ok (experiment: 1 services, 1 clients; monitoring: prometheus, grafana, node_exporter)" in result.stdout


def test_list_shows_every_kind_once():
    lines = orch("list").stdout.splitlines()
    names = [line.split()[0] for line in lines]
    from orch.kinds import KINDS

    services = sorted(k.name for k in KINDS.values() if k.role == "service")
    clients = sorted(k.name for k in KINDS.values() if k.role == "client")
    assert names == services + clients and {"redis", "redis_benchmark"} <= set(names)


def test_console_script_and_module_agree():
    from orch.cli import main

    assert callable(main)


def test_render_path_imports_nothing_heavy(tmp_path):
    code = (
        "import sys, io, contextlib\n"
        "from orch.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['render', %r, '--no-mkdir'])\n"
        "print(' '.join(sorted(m for m in ('sh', 'matplotlib', 'jinja2', 'hypothesis', 'numpy') if m in sys.modules)))\n" % REDIS
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_a_reader_that_goes_away_ends_render_quietly(tmp_path, reader):
    # `orch render R | head -1`: no "Broken pipe" message, no traceback, whichever side finishes first
    command = "%s -m orch render %s --no-mkdir | %s >/dev/null; echo \"status ${PIPESTATUS[0]}\"" % (sys.executable, REDIS, reader)
    for _ in range(3):
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert result.stderr == ""
        assert result.stdout.strip() in ("status 0", "status 141")
