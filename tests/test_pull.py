"""``orch pull``: every image a recipe or experiment uses, made on the login node where its jobs look for it; models too."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, bash_syntax, shellcheck
from orch import render_job
from orch.cli.images import jobs_of_files
from orch.pulling import images_of, pull_script
from orch.recipe import load_job
from orch.runtimes import runtime_of

STUDY = str(ROOT / "recipes/experiments/redis-study.yaml")
CH_STAND_INS = {
    "ch-image": 'echo "ch-image $*" >> "$ORCH_CALLS"',
    # ch-convert -i ch-image REF TARGET
    "ch-convert": 'echo "ch-convert $*" >> "$ORCH_CALLS"; mkdir -p "$4/tmp"; echo "$3" > "$4/made-from"',
}
# ollama serve answers /api/tags on OLLAMA_HOST; ollama pull asks it and puts the model in OLLAMA_MODELS
OLLAMA = r'''#!%(python)s
import http.server, os, sys, urllib.request
host, port = os.environ["OLLAMA_HOST"].rsplit(":", 1)
if sys.argv[1] == "serve":
    class Tags(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
        def log_message(self, *args):
            pass
    http.server.HTTPServer((host, int(port)), Tags).serve_forever()
elif sys.argv[1] == "pull":
    urllib.request.urlopen("http://%%s:%%s/api/tags" %% (host, port), timeout=5).read()
    models = os.environ.get("OLLAMA_MODELS") or os.path.join(os.environ["HOME"], ".ollama", "models")
    os.makedirs(models, exist_ok=True)
    open(os.path.join(models, sys.argv[2].replace(":", "_")), "w").write("model\n")
    print("pulling manifest\nsuccess")
'''


def stand_ins(tmp_path, programs):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in programs.items():
        (bin_dir / name).write_text(body if body.startswith("#!") else "#!/bin/bash\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def orch(tmp_path, *args, bin_dir):
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), ORCH_CALLS=str(tmp_path / "calls"),
               ORCH_IMAGE_DIR=str(tmp_path / "images"), HOME=str(tmp_path / "home"), ORCH_HOME=str(tmp_path / "orch-home"),
               PYTHONPATH=str(ROOT))
    (tmp_path / "calls").touch()
    return subprocess.run([sys.executable, "-m", "orch", *args], env=env, capture_output=True, text=True, timeout=120)


APPTAINER_STAND_IN = {
    # apptainer pull|build --force TARGET SOURCE
    "apptainer": 'echo "apptainer $*" >> "$ORCH_CALLS"; printf "sif of %s\\n" "$4" > "$3"',
}
PULLED = ["grafana/grafana:latest", "prom/prometheus:latest", "quay.io/prometheus/node-exporter:v1.8.2", "redis:7-alpine"]


@pytest.mark.parametrize("runtime", ["apptainer", "charliecloud"])
def test_pull_makes_each_image_of_an_experiment_once_where_its_jobs_look(runtime, tmp_path):
    bin_dir = stand_ins(tmp_path, CH_STAND_INS if runtime == "charliecloud" else APPTAINER_STAND_IN)
    pulled = orch(tmp_path, "pull", STUDY, "--site", "local", "--runtime", runtime, bin_dir=bin_dir)
    assert pulled.returncode == 0 and pulled.stdout == "", pulled.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    # prometheus, grafana, redis (service and client share it), node_exporter beside each member: each once
    pulls = sorted(c.split()[-1 if runtime == "apptainer" else 2].split("://")[-1] for c in calls if " pull " in c)
    assert pulls == PULLED, calls
    assert "orch pull: ready: " in pulled.stderr  # progress as it goes
    # every job finds every image it uses there, made from its own source: nothing to fetch, even where nothing may be
    for job in jobs_of_files([STUDY], site="local", runtime=runtime):
        strict = job.set(site=job.site.set(pull="never"))
        for source, sidecar in images_of(job):
            lines = runtime_of(job).image(strict, source, sidecar=sidecar)
            check = subprocess.run(["bash", "-euc", "\n".join(("orch_fail() { echo \"$1\"; exit 1; }",
                                                                'ORCH_RUN_DIR=%s' % tmp_path) + lines)],
                                   env=dict(os.environ, ORCH_IMAGE_DIR=str(tmp_path / "images"), HOME=str(tmp_path / "home")),
                                   capture_output=True, text=True)
            assert check.returncode == 0, (job.name, source, check.stdout + check.stderr)
    again = orch(tmp_path, "pull", STUDY, "--site", "local", "--runtime", runtime, bin_dir=bin_dir)
    assert again.returncode == 0 and (tmp_path / "calls").read_text().splitlines() == calls  # nothing made twice
    forced = orch(tmp_path, "pull", str(ROOT / "recipes/services/redis.yaml"), "--site", "local", "--runtime", runtime,
                  "--force", bin_dir=bin_dir)
    assert forced.returncode == 0 and len((tmp_path / "calls").read_text().splitlines()) > len(calls)


def test_a_failed_pull_says_what_failed_and_exits_non_zero(tmp_path):
    bin_dir = stand_ins(tmp_path, {"ch-image": 'echo "registry unreachable" >&2; exit 1', "ch-convert": "exit 0"})
    pulled = orch(tmp_path, "pull", str(ROOT / "recipes/services/redis.yaml"), "--site", "local", "--runtime", "charliecloud",
                  bin_dir=bin_dir)
    assert pulled.returncode == 1 and pulled.stdout == ""
    assert "registry unreachable" in pulled.stderr and "charliecloud could not make the image from docker://redis:7-alpine" in pulled.stderr
    assert not (tmp_path / "images" / "redis+7-alpine").exists()


def test_pull_puts_an_ollama_model_where_the_service_will_look(tmp_path):
    bin_dir = stand_ins(tmp_path, {"ollama": OLLAMA % {"python": sys.executable}})
    recipe = tmp_path / "ollama.yaml"
    recipe.write_text("service:\n  name: ollama\n  model: llama3.2:1b\n  environment:\n    OLLAMA_MODELS: %s/models\n" % tmp_path)
    pulled = orch(tmp_path, "pull", str(recipe), "--site", "local", "--runtime", "host", bin_dir=bin_dir)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "models" / "llama3.2_1b").exists() and "pulling model llama3.2:1b" in pulled.stderr
    assert subprocess.run(["pgrep", "-f", str(bin_dir / "ollama")], capture_output=True).returncode == 1  # its server stopped


def test_the_pull_script_is_bash_that_shellcheck_passes():
    for runtime in ("apptainer", "charliecloud"):
        jobs = jobs_of_files([STUDY, str(ROOT / "recipes/services/ollama.yaml"), str(ROOT / "recipes/clients/chroma_benchmark.yaml")],
                             site="meluxina", runtime=runtime)
        script = pull_script(jobs)
        bash_syntax(script)
        shellcheck(script)


def test_a_site_that_lets_no_job_fetch_makes_the_ollama_job_fail_on_a_missing_model(tmp_path):
    profile = tmp_path / "strict.yaml"
    profile.write_text("site:\n  name: strict\n  images:\n    pull: never\n")
    script = render_job(load_job(ROOT / "recipes/services/ollama.yaml", site=str(profile)))
    assert "ollama pull" not in script and "lets no job fetch (pull: never)" in script
