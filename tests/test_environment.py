"""A recipe's environment reaches its programs and nothing of orch's; passwords in it stay literal.

Scripts run for real with bash; Apptainer is a stand-in on PATH that pulls an empty image and,
for ``exec``, runs the command here with the environment it was given (``APPTAINERENV_*`` included).
"""
import json
import os
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from orch import render_job
from orch.recipe import parse_job
from strategies import HOSTILE, PRINTABLE, to_yaml

FAKE_APPTAINER = """#!/bin/bash
# a stand-in for apptainer: pull makes the image file; exec runs the command here, as it is
case "$1" in
    pull) shift; [ "$1" = --force ] && shift; mkdir -p "$(dirname "$1")" && echo image > "$1" ;;
    exec) shift
          while [ $# -gt 0 ]; do case "$1" in --bind) shift 2 ;; --nv) shift ;; *) break ;; esac; done
          shift  # the image
          exec "$@" ;;
    *) exit 2 ;;
esac
"""
# needs nothing from PATH: the recipe may have set one without /usr/bin
FAKE_SERVICE = """#!/bin/bash
/usr/bin/env -0 > "$ORCH_RUN_DIR/service.env"
/usr/bin/sleep 0.3
"""
FAKE_REDIS_CLI = "#!/bin/sh\necho PONG\n"


def programs(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("apptainer", FAKE_APPTAINER), ("fake-service", FAKE_SERVICE), ("redis-cli", FAKE_REDIS_CLI)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def environ_file(path):
    return dict(item.split("=", 1) for item in path.read_bytes().decode("utf-8", "surrogateescape").split("\0") if "=" in item)


def run_service(tmp_path, environment, runtime):
    """Run a redis job whose program is the stand-in service; ``(completed bash, the service's environment, job HOME)``."""
    bin_dir = programs(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    data = {"name": "redis", "command": str(bin_dir / "fake-service"), "environment": environment,
            "health_check": {"timeout": 5, "retries": 1, "interval": 1}}
    job = parse_job(to_yaml("service", data), site="local", runtime=runtime, job_id="t",
                    run_dir=str(tmp_path / "run"), endpoints_dir=str(tmp_path / "endpoints"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "APPTAINER"))}
    env.update(PATH="%s:%s" % (bin_dir, os.environ["PATH"]), HOME=str(home))
    done = subprocess.run(["bash", "-s"], input=render_job(job), capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=60)
    service_env = tmp_path / "run" / "service.env"
    return done, environ_file(service_env) if service_env.exists() else {}, home


def test_a_recipe_that_sets_home_and_path_moves_no_image_and_hides_no_runtime(tmp_path):
    done, seen, home = run_service(tmp_path, {"HOME": "/nonexistent/home", "PATH": "/nonexistent/bin"}, "apptainer")
    assert done.returncode == 0, done.stderr
    # orch pulled the image where the site says, under the job's own HOME, with the job's own PATH
    assert (home / "containers" / "redis+7-alpine.sif").exists()
    assert not os.path.exists("/nonexistent/home")
    # the container gets the recipe's values; apptainer itself ran with the job's
    assert seen["APPTAINERENV_HOME"] == "/nonexistent/home" and seen["APPTAINERENV_PATH"] == "/nonexistent/bin"
    assert seen["HOME"] == str(home) and seen["PATH"].startswith(str(tmp_path / "bin"))
    assert not any(name.startswith("ORCH_ENV_") for name in seen)
    assert json.loads((tmp_path / "run" / "state" / "finished").read_text())["exit_code"] == 0


def test_on_the_host_runtime_the_recipes_path_is_its_programs_not_orchs(tmp_path):
    # a PATH with nothing but the stand-ins: orch's mkdir, sed, timeout, date... must still be found
    bin_path = str(tmp_path / "bin")
    done, seen, home = run_service(tmp_path, {"PATH": bin_path, "HOME": "/nonexistent/home"}, "host")
    assert done.returncode == 0, done.stderr
    assert seen["PATH"] == bin_path and seen["HOME"] == "/nonexistent/home"
    assert '"orch_id": "t"' in (tmp_path / "run" / "state" / "ready").read_text()


# --- the rendered environment lines, run with bash


def section(script, title):
    lines = script.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("# --- " + title))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# --- ")), len(lines))
    return "\n".join(lines[start:end])


def program_environment(job):
    """What a program the job runs for its recipe is given: its environment lines run, then ``env -0`` through them."""
    script = section(render_job(job), "environment") + '\nbash -c "$ORCH_IN_ENV" orch-env /usr/bin/env -0\n'
    env = {"PATH": os.environ["PATH"], "HOME": "/home/u", "OTHER": "other's value"}
    out = subprocess.run(["bash", "-c", script], capture_output=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    return dict(item.split("=", 1) for item in out.stdout.decode("utf-8", "surrogateescape").split("\0") if "=" in item)


# any text a password may be: "$" and quotes above all; the environment cannot carry NUL
passwords = st.text(PRINTABLE, min_size=1, max_size=30) | st.sampled_from(tuple(h for h in HOSTILE if h) + ("pa$x", "$$", "${X}y"))


@settings(max_examples=40, deadline=None)
@given(password=passwords, runtime=st.sampled_from(("apptainer", "charliecloud", "host")))
def test_a_password_given_as_an_environment_variable_survives_byte_for_byte(password, runtime):
    def seen(role, block):
        return program_environment(parse_job(to_yaml(role, block), site="local", runtime=runtime))

    in_container = "APPTAINERENV_" if runtime == "apptainer" else ""
    # the seed's Grafana: GF_SECURITY_ADMIN_PASSWORD is read as the kind's admin_password
    grafana = seen("service", {"name": "grafana", "environment": {"GF_SECURITY_ADMIN_PASSWORD": password}})
    assert grafana[in_container + "GF_SECURITY_ADMIN_PASSWORD"] == password
    # a client recipe's MYSQL_PASSWORD: what sysbench's driver reads, on the node, by its own name
    client = seen("client", {"name": "mysql_benchmark", "environment": {"MYSQL_PASSWORD": password, "MYSQL_USER": "u"}})
    assert client["MYSQL_PASSWORD"] == password
    assert client[in_container + "MYSQL_PASSWORD"] == password
    # a seed redis: REDIS_PASSWORD, and the REDISCLI_AUTH the readiness check uses
    redis = seen("service", {"name": "redis", "environment": {"REDIS_PASSWORD": password}})
    assert redis[in_container + "REDIS_PASSWORD"] == password and redis[in_container + "REDISCLI_AUTH"] == password
    # any variable whose name says secret
    other = seen("service", {"name": "chroma", "environment": {"CHROMA_SERVER_AUTH_CREDENTIALS": password, "HF_TOKEN": password}})
    assert other[in_container + "CHROMA_SERVER_AUTH_CREDENTIALS"] == password and other[in_container + "HF_TOKEN"] == password


def test_other_values_still_expand_as_the_seeds_recipes_expect():
    job = parse_job(to_yaml("service", {"name": "chroma", "environment": {
        "BASE": "/scratch/x", "DATA": "${BASE}/data", "WHERE": "$HOME/w", "ELSE": "$OTHER", "DB_PASS": "$BASE"}}),
        site="local", runtime="host")
    seen = program_environment(job)
    assert seen["DATA"] == "/scratch/x/data" and seen["WHERE"] == "/home/u/w" and seen["ELSE"] == "other's value"
    # a secret's value is its text, references and all
    assert seen["DB_PASS"] == "$BASE"


def test_a_recipes_variable_in_its_args_is_its_value_and_a_literal_one_stays_literal():
    job = parse_job(to_yaml("client", {
        "name": "mysql_benchmark", "command": "/bin/echo",
        "environment": {"MYSQL_PASSWORD": "pa$x", "DB": "bench", "TARGET": "${DB}_db"},
        "args": ["--password=${MYSQL_PASSWORD}", "--db=$TARGET", "--home=$HOME"]}), site="local", runtime="host")
    line = next(line for line in render_job(job).splitlines() if line.startswith("setsid "))
    assert "'--password=pa$x' --db=bench_db --home=\"${HOME-}\"" in line
