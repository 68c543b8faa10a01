"""Properties of rendered scripts over generated recipes (hypothesis)."""
import os
import re
import shlex
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import bash_syntax, directives, shellcheck
from orch import render_job
from orch.quoting import VARIABLE, shell_line, word
from orch.recipe import parse_job
from orch.recipe_checks import SECRET_ENV
from orch.kinds import KINDS
from strategies import HOSTILE, client_recipes, hostile_values, service_recipes, texts, to_yaml

recipes = service_recipes() | client_recipes()
SBATCH_OPTION = {"ntasks_per_node": "ntasks-per-node", "cpus_per_task": "cpus-per-task"}


@settings(max_examples=60)
@given(recipes, st.sampled_from(("apptainer", "host")), st.sampled_from(("meluxina", "local")))
def test_every_generated_script_parses_and_passes_shellcheck(recipe, runtime, site):
    script = render_job(parse_job(recipe[0], runtime=runtime, site=site))
    assert bash_syntax(script) == ""
    assert shellcheck(script) == ""


@settings(max_examples=200)
@given(recipes)
def test_each_header_directive_equals_its_resource(recipe):
    text, data = recipe
    found = directives(render_job(parse_job(text, site="local")))
    for name, value in data["resources"].items():
        assert found[SBATCH_OPTION.get(name, name)] == str(value)
    expected = {SBATCH_OPTION.get(n, n) for n in data["resources"]}
    resource_options = {"nodes", "ntasks", "ntasks-per-node", "cpus-per-task", "mem", "time", "partition", "qos", "gres", "account",
                        "nodelist", "exclude", "constraint"}
    assert set(found) & resource_options == expected


@settings(max_examples=200)
@given(recipes)
def test_nv_exactly_when_gres_asks_for_a_gpu(recipe):
    text, data = recipe
    gpu = bool(re.search(r"(^|,)gpu(:|$)", data["resources"].get("gres", "")))
    script = render_job(parse_job(text))
    # the job's own containers (not its exporters) get the GPU; a Python-only client starts none
    containers = [line for line in script.splitlines()
                  if "apptainer exec" in line and "node_exporter" not in line and "cadvisor" not in line]
    assert all(("--nv" in line) == gpu for line in containers) and ("--nv" in script) == (gpu and bool(containers))


@settings(max_examples=100)
@given(recipes)
def test_rendering_is_deterministic_and_leaves_the_record_unchanged(recipe):
    job = parse_job(recipe[0])
    before = job.serialize()
    assert render_job(job) == render_job(parse_job(recipe[0]))
    assert job.serialize() == before


@settings(max_examples=300)
@given(st.lists(texts, max_size=5))
def test_shell_line_splits_back_into_its_words_when_nothing_expands(words):
    words = [w for w in words if not VARIABLE.search(w)]
    assert shlex.split(shell_line(*words)) == words


def expanded(value, env):
    """What bash makes of ``word(value)``: only $NAME/${NAME} replaced, by the environment's value or ''.

    IFS is bash's own (it never takes one from the environment).
    """
    env = dict(env, IFS=" \t\n")
    return VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


@settings(max_examples=150)
@given(st.lists(hostile_values, min_size=1, max_size=6))
def test_words_reach_a_program_intact_with_only_variables_expanded(values):
    env = {"PATH": os.environ["PATH"], "HOME": "/home/u", "ORCH_TEST_VAR": "a b * $(x)"}
    script = "printf '%s\\0' " + " ".join(word(v) for v in values)
    out = subprocess.run(["bash", "-c", script], capture_output=True, env=env, timeout=10).stdout
    assert out.decode("utf-8", "surrogateescape").split("\0")[:-1] == [expanded(v, env) for v in values]


# --- running rendered scripts: hostile values stay inert

FAKE_SERVICE = """#!/bin/bash
# records its arguments and the environment it was given, then exits
for a in "$@"; do printf '%s\\0' "$a"; done > "$ORCH_RUN_DIR/argv"
env -0 > "$ORCH_RUN_DIR/env"
sleep 0.2
"""
FAKE_REDIS_CLI = "#!/bin/sh\necho PONG\n"


def fake_bin(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fake-service").write_text(FAKE_SERVICE)
    (bin_dir / "redis-cli").write_text(FAKE_REDIS_CLI)
    for program in bin_dir.iterdir():
        program.chmod(0o755)
    return bin_dir


def run_script(script, tmp_path, bin_dir, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PATH="%s:%s" % (bin_dir, env["PATH"]), HOME=str(tmp_path / "home"), ORCH_TEST_VAR="a b * $(x)")
    env.pop("ORCH_UNSET_VAR", None)
    env.update(env_extra or {})
    result = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    return result, env


@settings(max_examples=25)
@given(args=st.lists(hostile_values, max_size=4), environment=st.dictionaries(st.from_regex(r"T_[A-Z]{1,6}", fullmatch=True), hostile_values, max_size=3))
def test_hostile_values_are_inert_when_the_script_runs(tmp_path_factory, args, environment):
    tmp_path = tmp_path_factory.mktemp("run")
    bin_dir = fake_bin(tmp_path)
    data = {
        "name": "redis",
        "command": str(bin_dir / "fake-service"),
        "args": args,
        "environment": environment,
        "health_check": {"timeout": 5, "retries": 1, "interval": 1},
    }
    job = parse_job(to_yaml("service", data), site="local", runtime="host", job_id="t")
    result, env = run_script(render_job(job), tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "orch-runs" / "redis_t"
    argv = (run_dir / "argv").read_bytes().decode("utf-8").split("\0")[:-1]
    assert argv == [expanded(a, env) for a in args]
    seen = dict(item.split("=", 1) for item in (run_dir / "env").read_bytes().decode("utf-8").split("\0") if "=" in item)
    for name, value in environment.items():
        # a name that says it holds a secret (T_PASS, T_TOKEN) is taken literally
        assert seen[name] == (value if SECRET_ENV.search(name) else expanded(value, env))
    assert not os.path.exists("/tmp/orch-pwned")
    # it was ready and published; once it ended its endpoint went away again
    assert '"orch_id": "t"' in (run_dir / "state" / "ready").read_text()
    assert not (tmp_path / "orch-runs" / "endpoints" / "redis.json").exists()


def test_hostile_values_table_renders_and_runs(tmp_path):
    """Every hand-picked hostile value at once, in args and environment."""
    bin_dir = fake_bin(tmp_path)
    data = {
        "name": "redis",
        "command": str(bin_dir / "fake-service"),
        "args": list(HOSTILE),
        "environment": {"T_%d" % i: v for i, v in enumerate(HOSTILE)},
        "description": "\n".join(HOSTILE),
        "health_check": {"timeout": 5, "retries": 1, "interval": 1},
    }
    job = parse_job(to_yaml("service", data), site="local", runtime="host", job_id="t")
    script = render_job(job)
    assert shellcheck(script) == ""
    result, env = run_script(script, tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    argv = (tmp_path / "orch-runs/redis_t/argv").read_bytes().decode("utf-8").split("\0")[:-1]
    assert argv == [expanded(a, env) for a in HOSTILE]
    assert not os.path.exists("/tmp/orch-pwned")
    # the description is in the job's log, word for word, on one line
    assert "description: " + " ".join("\n".join(HOSTILE).split()) + "\n" in result.stderr


@settings(max_examples=100)
@given(recipes, st.sampled_from((
    ("resources", "mem", "4.5G"), ("resources", "time", "soon"), ("resources", "partition", "a b"),
    ("resources", "nodes", "0"), ("resources", "gres", "gpu=1"), ("resources", "account", "p1;x"),
    ("resources", "nodelist", "n[2-1]"), ("resources", "exclude", "a b"), ("resources", "constraint", "[a&b]"),
)))
def test_invalid_value_is_reported_on_its_own_line(recipe, bad):
    from orch.errors import RecipeError

    text, data = recipe
    block, field, value = bad
    data = dict(data, resources=dict(data["resources"], **{field: value}))
    role = KINDS[data["name"]].role
    text = to_yaml(role, data)
    line = next(i for i, l in enumerate(text.split("\n"), 1) if l.startswith("    %s:" % field))
    try:
        parse_job(text, "r.yaml")
    except RecipeError as error:
        assert [(p.line, p.field) for p in error.problems] == [(line, "%s.resources.%s" % (role, field))]
    else:
        raise AssertionError("accepted %s=%r" % (field, value))
