"""Runtimes: one flow, each runtime's own words. Scripts of Apptainer and Charliecloud differ only in the
lines the runtime functions give (image, exec, environment, modules); site profiles are checked like recipes."""
import re

import pytest

from conftest import ROOT, bash_syntax, shellcheck
from orch import render_job
from orch.errors import RecipeError
from orch.kinds import KINDS
from orch.recipe import load_job, parse_job
from orch.runtimes import RUNTIMES, charliecloud
from orch.runtimes.images import charliecloud_name
from orch.sections.monitoring import CADVISOR_IMAGE, CADVISOR_SOURCE, NODE_EXPORTER_IMAGE, NODE_EXPORTER_SOURCE
from orch.sites import parse_site, resolve_site, site_named

RECIPES = sorted((ROOT / "recipes" / "services").glob("*.yaml")) + sorted((ROOT / "recipes" / "clients").glob("*.yaml"))
APPTAINER_EXEC = re.compile(r'apptainer exec(?: --nv)?((?: --bind \S+)*) (\S+)')
CH_RUN = re.compile(r'ch-run((?: -b \S+)*) (\S+) --')


def image_blocks(job, runtime):
    """Every block of lines the runtime's ``image`` gives this job: its own image and its sidecars'."""
    image = RUNTIMES[runtime].image
    kind = KINDS[job.kind]
    return (image(job, kind.docker_source), image(job, NODE_EXPORTER_SOURCE, sidecar=NODE_EXPORTER_IMAGE),
            image(job, CADVISOR_SOURCE, sidecar=CADVISOR_IMAGE))


def runtime_neutral(script, job, runtime):
    """The script with each runtime function's lines put back to one neutral form."""
    for block in image_blocks(job, runtime):
        if block:
            script = script.replace("\n".join(block) + "\n", "<image>\n")
    script = script.replace("(%s runtime," % runtime, "(<runtime> runtime,")
    # charliecloud reaches the run directory through its top-level directory, at the same path
    binds = (lambda match: "<run%s> %s" % (match.group(1).replace(" --bind ", " ").replace(" -b ", " ")
                                          .replace('"$ORCH_RUN_TOP"', '"$ORCH_RUN_DIR"'), match.group(2)))
    script = APPTAINER_EXEC.sub(binds, script) if runtime == "apptainer" else CH_RUN.sub(binds, script)
    lines = []
    for line in script.splitlines():
        if line.startswith("module ") or line == "# --- modules":
            continue
        # how the environment reaches a command is the runtime's own line (Runtime.environment); Apptainer's also
        # names the variables its load generator reads by their own names
        if line.startswith("export ORCH_PLAIN_ENV="):
            continue
        lines.append("ORCH_IN_ENV=<runtime>" if line == "ORCH_IN_ENV='%s'" % RUNTIMES[runtime].environment else line)
    return "\n".join(lines)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_apptainer_and_charliecloud_scripts_differ_only_in_the_runtime_lines(path):
    apptainer = load_job(path, site="meluxina", runtime="apptainer", job_id="same")
    ch = load_job(path, site="meluxina", runtime="charliecloud", job_id="same")
    first, second = render_job(apptainer), render_job(ch)
    assert first != second
    assert runtime_neutral(first, apptainer, "apptainer") == runtime_neutral(second, ch, "charliecloud")


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_charliecloud_scripts_parse_and_pass_shellcheck(path):
    script = render_job(load_job(path, site="meluxina", runtime="charliecloud"))
    bash_syntax(script)
    shellcheck(script)


def test_charliecloud_images_are_named_as_ch_image_names_them_in_the_image_directory():
    job = load_job(ROOT / "recipes/services/redis.yaml", runtime="charliecloud")
    script = render_job(job)
    # the recipe's SIF path is Apptainer's; the directory image comes from the environment or the site
    assert 'ORCH_IMAGE_DIR=${ORCH_IMAGE_DIR:-"${HOME-}"/containers}' in script.splitlines()
    assert 'ORCH_IMAGE="${ORCH_IMAGE_DIR-}"/redis+7-alpine' in script.splitlines()
    assert charliecloud_name("docker://severalnines/sysbench") == "severalnines%sysbench"
    own = parse_job("service:\n  name: redis\n  container:\n    image_path: /scratch/img/redis\n", runtime="charliecloud")
    assert charliecloud.image_location(own, "docker://redis:7-alpine") == "/scratch/img/redis"


def test_a_site_that_lets_no_job_fetch_fails_a_missing_image_at_once_naming_it(tmp_path):
    profile = tmp_path / "strict.yaml"
    profile.write_text("site:\n  name: strict\n  images:\n    directory: /shared/images\n    pull: never\n")
    for runtime in ("apptainer", "charliecloud"):
        script = render_job(load_job(ROOT / "recipes/services/redis.yaml", site=str(profile), runtime=runtime))
        assert "apptainer pull" not in script and "ch-image pull" not in script
        failure = next(line for line in script.splitlines() if "pull: never" in line)
        assert "orch pull RECIPE --site %s --runtime %s" % (profile, runtime) in failure and "docker://redis:7-alpine" in failure
    with pytest.raises(RecipeError) as caught:
        parse_job("service:\n  name: redis\n  container:\n    force_rebuild: true\n", "r.yaml", site=str(profile))
    assert [(p.line, p.field) for p in caught.value.problems] == [(4, "service.container.force_rebuild")]


def test_a_gpu_job_gets_each_runtimes_gpu_words_and_the_sites_gpu_partition():
    text = "service:\n  name: ollama\n  resources:\n    gres: gpu:1\n"
    apptainer = render_job(parse_job(text, runtime="apptainer"))
    ch = render_job(parse_job(text, runtime="charliecloud"))
    assert "apptainer exec --nv " in apptainer and 'ch-fromhost --nvidia "$ORCH_IMAGE"' in ch
    assert "#SBATCH --partition=gpu" in apptainer.splitlines()
    assert "#SBATCH --partition=cpu" in render_job(parse_job("service:\n  name: redis\n")).splitlines()


# --- site profiles


def test_shipped_sites_are_files_and_read_as_before():
    meluxina = site_named("meluxina")
    assert meluxina.account == "p200981" and meluxina.runtime == "apptainer" and meluxina.login == "login.lxp.lu"
    assert tuple(meluxina.modules["apptainer"]) == ("Apptainer/1.2.4-GCCcore-12.3.0",) and meluxina.purge_modules
    assert meluxina.advertise_host is None and meluxina.bind_address == "0.0.0.0"
    local = site_named("local")
    assert local.runtime == "host" and local.advertise_host == "127.0.0.1"


def test_a_users_own_site_wins_and_a_file_path_works(tmp_path):
    (tmp_path / "meluxina.yaml").write_text("site:\n  name: meluxina\n  account: p999999\n  runtime: charliecloud\n")
    assert site_named("meluxina", (str(tmp_path),)).account == "p999999"
    assert resolve_site(str(tmp_path / "meluxina.yaml")).runtime == "charliecloud"
    job = parse_job("service:\n  name: redis\n", site=str(tmp_path / "meluxina.yaml"))
    assert job.runtime == "charliecloud" and "#SBATCH --account=p999999" in render_job(job).splitlines()


def test_a_bad_site_profile_names_its_file_line_and_every_field(tmp_path):
    text = ("site:\n  name: x\n  runtime: docker\n  images:\n    pull: sometimes\n"
            "  modules:\n    apptainer: ['a; rm -rf /']\n  colour: red\n")
    with pytest.raises(RecipeError) as caught:
        parse_site(text, "bad.yaml")
    assert [(p.file, p.line, p.field) for p in caught.value.problems] == [
        ("bad.yaml", 3, "site.runtime"), ("bad.yaml", 5, "site.images.pull"), ("bad.yaml", 7, "site.modules.apptainer[0]"),
        ("bad.yaml", 8, "site.colour")]
    with pytest.raises(RecipeError) as caught:
        parse_job("service:\n  name: redis\n", "r.yaml", site="nosuchsite")
    assert "unknown site 'nosuchsite' (known: local, meluxina" in str(caught.value)


# --- the image lines, run: stand-in runtime programs that record what they were asked and make the image

STAND_INS = {
    # apptainer pull|build --force TARGET SOURCE
    "apptainer": 'echo "apptainer $*" >> "$ORCH_CALLS"; printf "sif of %s\\n" "$4" > "$3"',
    "ch-image": 'echo "ch-image $*" >> "$ORCH_CALLS"',
    # ch-convert -i ch-image REF TARGET
    "ch-convert": 'echo "ch-convert $*" >> "$ORCH_CALLS"; mkdir -p "$4/etc"; echo "$3" > "$4/etc/made-from"',
}


def run_image_lines(job, tmp_path, source="docker://redis:7-alpine"):
    """Run the runtime's image lines for ``job`` in bash; ``(exit status, calls, stderr)``."""
    import subprocess

    from orch.runtimes import runtime_of

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STAND_INS.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    script = "\n".join(("orch_log() { echo \"log: $*\" >&2; }", "orch_fail() { echo \"FAILED: $1\" >&2; exit \"$2\"; }",
                        'ORCH_RUN_DIR="%s"; mkdir -p "$ORCH_RUN_DIR/state"' % (tmp_path / "run"))
                       + runtime_of(job).image(job, source))
    env = {"PATH": "%s:/usr/bin:/bin" % bin_dir, "ORCH_CALLS": str(calls), "HOME": str(tmp_path), "USER": "someone",
           "ORCH_IMAGE_DIR": str(tmp_path / "images")}
    done = subprocess.run(["bash", "-euc", script], env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, calls.read_text().splitlines(), done.stderr


@pytest.mark.parametrize("runtime", ["apptainer", "charliecloud"])
def test_an_image_is_made_once_and_again_only_when_its_source_changes(runtime, tmp_path):
    first = parse_job("service:\n  name: redis\n", site="local", runtime=runtime)
    status, calls, err = run_image_lines(first, tmp_path)
    assert status == 0 and len([c for c in calls if "pull" in c]) == 1, (calls, err)
    assert run_image_lines(first, tmp_path)[:2] == (0, [])  # there, and made from that very source
    # other sources and other build steps get images of their own, by default: nothing is remade
    built = parse_job("service:\n  name: redis\n  container:\n    build_commands: [apk add curl]\n", site="local", runtime=runtime)
    status, calls, err = run_image_lines(built, tmp_path)
    assert status == 0 and any(" build " in c for c in calls), (calls, err)
    assert run_image_lines(built, tmp_path)[:2] == (0, []) and run_image_lines(first, tmp_path)[:2] == (0, [])
    # one place named by the recipe, another source: made anew there
    place = "    image_path: %s/mine%s\n" % (tmp_path, ".sif" if runtime == "apptainer" else "")
    for tag in ("7", "7.2"):
        job = parse_job("service:\n  name: redis\n  container:\n    docker_source: docker://redis:%s\n%s" % (tag, place),
                        site="local", runtime=runtime)
        status, calls, err = run_image_lines(job, tmp_path)
        assert status == 0 and any("redis:%s " % tag in c + " " for c in calls), (calls, err)
    if runtime == "charliecloud":
        # the new one behind the same name; the old one left whole for a job that may still run in it
        assert (tmp_path / "mine" / "etc" / "made-from").read_text() == "redis:7.2\n"
        assert [(p / "root" / "etc" / "made-from").read_text() for p in tmp_path.glob("mine.v.*")
                if (p / "root").is_dir()].count("redis:7\n") == 1
    else:
        assert (tmp_path / "mine.sif").read_text() == "sif of docker://redis:7.2\n"
    assert not [p.name for p in tmp_path.rglob("*.tmp")]


@pytest.mark.parametrize("runtime", ["apptainer", "charliecloud"])
def test_a_missing_image_on_a_site_that_lets_no_job_fetch_fails_at_once_naming_it(runtime, tmp_path):
    profile = tmp_path / "strict.yaml"
    profile.write_text("site:\n  name: strict\n  pull: never\n".replace("  pull", "  images:\n    pull"))
    job = parse_job("service:\n  name: redis\n", site=str(profile), runtime=runtime)
    status, calls, err = run_image_lines(job, tmp_path)
    assert status == 1 and calls == []
    assert "FAILED: image %s/images/" % tmp_path in err and "orch pull RECIPE --site %s" % profile in err, err


def test_build_commands_become_each_runtimes_build_file():
    from orch.runtimes.apptainer import definition_file

    assert definition_file("library://alpine:3.19", ["apk add curl"]).startswith("Bootstrap: library\nFrom: alpine:3.19\n")
    assert definition_file("oras://ghcr.io/x/y:1", []).startswith("Bootstrap: oras\nFrom: ghcr.io/x/y:1\n")
    assert definition_file("docker://python:3.11", ["pip install x"]) == \
        "Bootstrap: docker\nFrom: python:3.11\n\n%post\n    pip install x\n"
    assert charliecloud.dockerfile("python:3.11", ["pip install x"]) == "FROM python:3.11\nRUN pip install x\n"


def test_validate_checks_a_site_profile_file_too(tmp_path):
    import subprocess
    import sys

    good, bad = tmp_path / "mine.yaml", tmp_path / "bad.yaml"
    good.write_text("# my cluster\nsite:\n  name: mine\n  runtime: charliecloud\n  images:\n    pull: never\n")
    bad.write_text("site:\n  name: bad\n  images:\n    directory: /x; rm -rf /\n")
    done = subprocess.run([sys.executable, "-m", "orch", "validate", str(good), str(bad), str(ROOT / "orch/sites/meluxina.yaml")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert done.stdout.splitlines() == ["%s: ok (site mine: charliecloud runtime, pull never)" % good,
                                        "%s: ok (site meluxina: apptainer runtime, pull missing)" % (ROOT / "orch/sites/meluxina.yaml")]
    assert done.stderr.startswith("%s:4: site.images.directory: " % bad) and len(done.stderr.splitlines()) == 1


def test_bind_mounts_are_absolute_and_charliecloud_takes_no_options():
    with pytest.raises(RecipeError) as caught:
        parse_job("service:\n  name: redis\n  container:\n    bind_mounts: [data, /x:y]\n", "r.yaml")
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (4, "service.container.bind_mounts[0]"), (4, "service.container.bind_mounts[1]")]
    ok = "service:\n  name: redis\n  container:\n    bind_mounts: [/scratch/x, \"$SCRATCH/d:/data:ro\"]\n"
    assert parse_job(ok, runtime="apptainer").container.bind_mounts
    with pytest.raises(RecipeError) as caught:
        parse_job(ok, "r.yaml", runtime="charliecloud")
    assert [(p.line, p.field) for p in caught.value.problems] == [(4, "service.container.bind_mounts")]
    assert "no options" in str(caught.value)
