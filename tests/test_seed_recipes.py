"""The older tool's recipes load unchanged, and what its redis client's fields ask for happens.

Seed-style recipes of our own (tests/recipes/seed_*.yaml) stand for the older tool's:
each validates and renders through the CLI; the redis client's native fields
(``native_tests``, the ``-t`` list, ``wait_for_service``, ``key_size`` ...) are followed
into the rendered script, into what the load generator runs, and against a real Redis.
"""
import json
import subprocess
import sys
import time

import pytest
from hypothesis import given, strategies as st

from conftest import ROOT, SEED_STYLE, bash_syntax, finish
from orch import parse_job, render_job
from orch.clients.redis_tool import GROUPS, NAMES, ORDER, selected_tests
from orch.errors import RecipeError
from orch.recipe import load_job
from orch.sections.client import result_copies
from test_redis_client import client, service_env, start_redis, stop
from test_services import free_port, need, shipped

SEED = ROOT / "tests" / "recipes"


def cli(*words):
    return subprocess.run([sys.executable, "-m", "orch", *words], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("path", SEED_STYLE, ids=lambda p: p.name)
def test_every_seed_style_recipe_validates_and_renders_through_the_cli(path):
    validated = cli("validate", str(path))
    assert validated.returncode == 0 and validated.stdout.startswith("%s: ok" % path), validated.stderr
    rendered = cli("render", str(path), "--no-mkdir")
    assert rendered.returncode == 0, rendered.stderr
    assert bash_syntax(rendered.stdout) == ""


def args_line(script):
    return next(line for line in script.splitlines() if "orch_args=(" in line)


# ------------------------------------------------------------ the fields, as loaded and rendered


def test_native_tests_is_the_tests_list_under_the_seeds_name():
    job = load_job(SEED / "seed_redis_native.yaml")
    # SET,GET: redis-benchmark's own names, in any case; its order
    assert job.parameters["tests"] == ("set", "get")
    script = render_job(job)
    line = args_line(script)
    for words in ("--clients 20", "--data-size 512", "--pipeline 8", "--requests 20000", "--tests 'set,get'"):
        assert words in line, line
    assert "\nORCH_WAIT=45\n" in script


def test_the_test_list_runs_as_redis_benchmark_would_run_it():
    # redis-benchmark -t runs the selected tests in its own order, each once: a group covers its members
    def tests(value):
        return parse_job('client:\n  name: redis_benchmark\n  parameters:\n    native_tests: "%s"\n' % value).parameters["tests"]

    assert tests("get,SET,get") == ("set", "get")
    assert tests("lrange_100,lpush,ping_inline,ping") == ("ping", "lpush", "lrange_100")
    assert tests("MSET, zpopmin , zadd") == ("zadd", "zpopmin", "mset")


@given(st.lists(st.sampled_from(NAMES), min_size=1).map(lambda names: [n.upper() if len(n) % 2 else n for n in names]))
def test_the_selected_tests_are_those_of_the_list_once_each_in_redis_benchmarks_order(names):
    def expanded(tests):
        return [member for test in tests for member in GROUPS.get(test.lower(), (test.lower(),))]

    chosen = selected_tests(names)
    assert len(set(chosen)) == len(chosen)
    # the same redis-benchmark tests run, and in its order: no member runs twice
    assert sorted(set(expanded(chosen))) == sorted(set(expanded(names)))
    assert len(expanded(chosen)) == len(set(expanded(chosen)))
    assert expanded(chosen) == sorted(expanded(chosen), key=ORDER.index)


def test_a_sweep_of_tests_runs_one_test_per_array_task():
    job = parse_job("client:\n  name: redis_benchmark\n  sweep:\n    native_tests: \"get,set\"\n")
    script = render_job(job)
    assert "#SBATCH --array=0-1%1" in script
    assert "0) orch_args=(--tests set)" in script and "1) orch_args=(--tests get)" in script


def test_key_size_reaches_the_load_generator():
    job = load_job(SEED / "seed_redis_client.yaml")
    line = args_line(render_job(job))
    assert "--key-size 10" in line and "--data-size 100" in line and "--test-persistence" in line


def test_the_seeds_redis_config_path_means_orchs_own_generated_config():
    script = render_job(load_job(SEED / "seed_redis_service.yaml", site="local", runtime="host"))
    start = next(line for line in script.splitlines() if line.startswith("setsid ") and "redis-server" in line)
    assert start.startswith('setsid bash -c "$ORCH_IN_ENV" orch-env redis-server "$ORCH_RUN_DIR/state/redis.conf" --port 6379 '
                            '--bind "$ORCH_BIND"')
    assert "/redis/config" not in start
    # REDIS_PERSISTENCE: aof, from the environment, is in that config
    assert "appendonly yes" in script
    # any other args are the recipe's own, verbatim
    other = parse_job("service:\n  name: redis\n  args: [\"/etc/redis/other.conf\"]\n", site="local", runtime="host")
    assert '\nsetsid bash -c "$ORCH_IN_ENV" orch-env redis-server /etc/redis/other.conf &' in render_job(other)


REFUSED = [
    ("unknown-test", '    native_tests: "SET,GET,HGET"\n', 4, "client.parameters.native_tests",
     "not redis-benchmark tests: 'HGET' (known: get, hset, incr,"),
    ("no-test", "    tests: []\n", 4, "client.parameters.tests", "names no test"),
    ("both-names", '    tests: "set"\n    native_tests: "get"\n', 5, "client.parameters.native_tests",
     "same parameter as tests (given twice)"),
    ("key-size-with-keyspace", "    keyspace: 1000\n    key_size: 10\n", 5, "client.parameters.key_size",
     "10 is too short with keyspace: its keys end in 12 random digits after a letter (at least 13)"),
    ("key-size-big-value", "    key_size: 8\n  sweep:\n    value_size: [64, 100000]\n", 4, "client.parameters.key_size",
     "the tests run written out, with the value on the command line: data_size 100000 is over 65536"),
    ("wait-swept", "    clients: 5\n  sweep:\n    wait_for_service: [30, 60]\n", 6, "client.sweep.wait_for_service",
     "sets how orch runs the client, not its load, so it is no sweep axis: give it under parameters:"),
    ("output-file-swept", "    clients: 5\n  sweep:\n    output_file: [a, b]\n", 6, "client.sweep.output_file",
     "no sweep axis"),
    ("parametric-without-sweep", "    clients: 5\n    parametric_mode: true\n", 5, "client.parameters.parametric_mode",
     "true, but no parameter has several values: there is nothing to sweep"),
    ("not-parametric-with-sweep", "    client_counts: \"1,10\"\n    parametric_mode: false\n", 5,
     "client.parameters.parametric_mode", "false, but clients has several values: that is a sweep"),
    ("own-script", "    clients: 5\n  script:\n    name: my_bench.py\n", 6, "client.script.name",
     "'my_bench.py' is not the older tool's script for redis_benchmark (redis_benchmark.py, "
     "redis_parametric_benchmark.py), which orch's own load generator replaces: run a script of your own with command:"),
]


@pytest.mark.parametrize("body, line, field, message", [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_what_orch_cannot_honour_is_refused_naming_file_line_and_field(tmp_path, body, line, field, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("client:\n  name: redis_benchmark\n  parameters:\n" + body)
    with pytest.raises(RecipeError) as error:
        load_job(recipe)
    shown = [str(p) for p in error.value.problems]
    assert any(p.startswith("%s:%d: %s: " % (recipe, line, field)) and message in p for p in shown), shown
    done = cli("validate", str(recipe))
    assert done.returncode == 2 and "%s:%d: %s: " % (recipe, line, field) in done.stderr


def test_the_load_generator_refuses_what_redis_benchmark_would_skip(tmp_path):
    for words, said in ((["--tests", "set,hget"], "not redis-benchmark tests: hget"),
                        (["--key-size", "5", "--keyspace", "100"], "at least 13")):
        code, err = finish(client(free_port(), tmp_path / "r.json", *words))
        assert code == 2 and said in err, err


# ------------------------------------------------------------ against a real Redis


@pytest.fixture(scope="module")
def redis_service(tmp_path_factory):
    need("redis-server", "redis-benchmark")
    run, port = start_redis(tmp_path_factory.mktemp("seed") / "redis", shipped("redis"))
    try:
        yield run, port
    finally:
        stop(run)


def client_job(tmp_path, text, endpoints):
    """The client recipe rendered for this machine (host runtime, local site), run with bash to its end."""
    job = parse_job(text, site="local", runtime="host", python=sys.executable, run_dir=str(tmp_path / "run"),
                    endpoints_dir=str(endpoints))
    script = tmp_path / "client.sh"
    script.write_text(render_job(job))
    env = dict(service_env(), PYTHONPATH=str(ROOT))
    began = time.monotonic()
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    return done, time.monotonic() - began, tmp_path / "run"


def test_the_seeds_native_client_runs_the_tests_it_names_with_its_settings(redis_service, tmp_path):
    run, port = redis_service
    copy = tmp_path / "copies" / "redis.json"
    text = (SEED / "seed_redis_native.yaml").read_text().replace("num_operations: 20000", "num_operations: 3000")
    text = text.replace("/tmp/redis_native_results.json", str(copy))
    # the seed names the port its service listens on; this test's redis listens on a free one
    text = text.replace("port: 6379", "port: %d" % port)
    done, _, run_dir = client_job(tmp_path, text, run.endpoints)
    assert done.returncode == 0, done.stderr
    (result,) = (run_dir / "results").glob("*.json")
    # output_file: the document is there too, as the older tool wrote it there
    assert copy.read_text() == result.read_text() and "results copied to %s" % copy in done.stderr
    doc = json.loads(result.read_text())
    # native_tests: SET,GET selects exactly those two, run in that order, one -t each
    assert sorted(doc["domain"]["tests"]) == ["get", "set"]
    commands = [n["command"] for n in doc["raw"]["native_output"]]
    assert [c[c.index("-t") + 1] for c in commands] == ["set", "get"]
    for command in commands:
        for flag, value in (("-c", "20"), ("-n", "3000"), ("-d", "512"), ("-P", "8"), ("-p", str(port))):
            assert command[command.index(flag) + 1] == value, command
    assert doc["counts"]["completed"] == 6000 and doc["run"]["partial"] is False


def test_wait_for_service_bounds_the_wait_for_an_endpoint_that_never_comes(tmp_path):
    text = (SEED / "seed_redis_native.yaml").read_text().replace("wait_for_service: 45", "wait_for_service: 3")
    done, took, run_dir = client_job(tmp_path, text, tmp_path / "no-endpoints")
    assert done.returncode == 1
    assert 3 <= took < 60, "took %.1f s" % took
    assert "no endpoint for service redis after 3 s" in (run_dir / "state" / "finished").read_text()


def test_wait_for_service_bounds_the_wait_for_a_target_that_does_not_answer(tmp_path):
    endpoints = tmp_path / "endpoints"
    endpoints.mkdir()
    port = free_port()
    (endpoints / "redis.json").write_text(json.dumps({"name": "redis", "host": "127.0.0.1", "port": port}))
    text = (SEED / "seed_redis_native.yaml").read_text().replace("wait_for_service: 45", "wait_for_service: 4")
    text = text.replace("port: 6379", "port: %d" % port)  # the port the (silent) service publishes
    done, took, run_dir = client_job(tmp_path, text, endpoints)
    assert done.returncode == 1
    assert 4 <= took < 60, "took %.1f s" % took
    assert "not answering after 4 s" in (run_dir / "state" / "finished").read_text()


def keys_of(port):
    from orch.clients.redis_benchmark import Resp

    conn = Resp("127.0.0.1", port)
    try:
        return conn.call("KEYS", "*")
    finally:
        conn.close()


def flush(port):
    from orch.clients.redis_benchmark import Resp

    conn = Resp("127.0.0.1", port)
    try:
        conn.call("FLUSHALL")
    finally:
        conn.close()


def test_key_size_gives_keys_of_that_many_bytes(redis_service, tmp_path):
    _, port = redis_service
    flush(port)
    out = tmp_path / "r.json"
    tests = "set,get,incr,lpush,rpush,sadd,hset,zadd,lrange_100,mset"
    code, err = finish(client(port, out, "--requests", "2000", "--clients", "5", "--data-size", "40",
                              "--key-size", "10", "--tests", tests))
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert all(row["completed"] for row in doc["domain"]["tests"].values())
    # the rows read as redis-benchmark's own would
    assert {"set", "get", "incr", "lpush", "lrange_100 (first 100 elements)", "mset (10 keys)"} <= set(doc["domain"]["tests"])
    keys = keys_of(port)
    assert keys and {len(key) for key in keys} == {10}, keys
    # one key per data type (string, counter, list, set, hash, sorted set): none lands on another's
    assert len(keys) == 6 and not doc["counts"]["errors"]
    # the record shows the value by its size
    assert "<40 bytes>" in doc["raw"]["native_output"][0]["command"]
    flush(port)
    code, err = finish(client(port, out, "--requests", "2000", "--keyspace", "50", "--key-size", "20", "--tests", "set,get"))
    assert code == 0, err
    keys = keys_of(port)
    assert 1 < len(keys) <= 50 and {len(key) for key in keys} == {20}, keys


# ------------------------------------------------------------ output_file and output:


def run_copies(job, tmp_path, env):
    """The job's copy lines, run with bash as the job runs them once its load has ended."""
    result = tmp_path / "results" / "orch_x-3-77.json"
    result.parent.mkdir(exist_ok=True)
    result.write_text('{"schema": "orch.result/1"}')
    script = "orch_log() { printf '%s\\n' \"$*\" >&2; }\n" + "\n".join(result_copies(job)) + "\n"
    environment = dict(env, ORCH_RESULT=str(result), SLURM_ARRAY_TASK_ID="3", PATH="/usr/bin:/bin")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, env=environment)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_output_file_and_output_get_copies_of_the_results_document(tmp_path):
    job = load_job(SEED / "seed_ollama_parametric.yaml")
    assert list(job.result_files) == ["/tmp/ollama_parametric.json"] and job.result_dir == "$SCRATCH"
    # a sweep: each array task's copy has its number before the extension, so none overwrites another
    here = str(tmp_path / "out" / "ollama.json")
    job = job.set(result_files=[here])
    said = run_copies(job, tmp_path, {"SCRATCH": str(tmp_path / "scratch")})
    assert (tmp_path / "out" / "ollama-3.json").read_text() == '{"schema": "orch.result/1"}'
    assert (tmp_path / "scratch" / "orch_x-3-77.json").exists(), said
    # $SCRATCH unset (not MeluXina): nothing lands at /, and the log says why
    (tmp_path / "out" / "ollama-3.json").unlink()
    said = run_copies(job, tmp_path, {})
    assert "not copied to $SCRATCH: SCRATCH not set here" in said
    assert (tmp_path / "out" / "ollama-3.json").exists()


def test_without_output_fields_nothing_is_copied():
    job = load_job(ROOT / "recipes" / "clients" / "redis_benchmark.yaml")
    assert result_copies(job) == () and "orch_copy" not in render_job(job)


def test_an_image_without_redis_benchmark_fails_at_once_saying_so(tmp_path):
    # the older tool's redis client names a Python image: its script ran there, redis-benchmark is not in it
    image = tmp_path / "python-image"
    image.write_text('#!/bin/sh\necho "FATAL: \\"$1\\": executable file not found in $PATH" >&2\nexit 255\n')
    image.chmod(0o755)
    out = tmp_path / "r.json"
    code, err = finish(client(free_port(), out, "--tests", "set", wrap=(str(image),)))
    assert code == 1
    assert "redis-benchmark does not run in the client's image (%s)" % image in err
    assert "docker://redis:7-alpine" in json.loads(out.read_text())["counts"]["errors"].popitem()[0]


def test_a_monitoring_target_may_leave_out_its_job_name_and_a_services_port():
    # the older tool's own documentation: job_name and port optional; orch names the job after the
    # target and, for a service, scrapes the port its endpoint file gives
    job = parse_job('service:\n  name: prometheus\n  monitoring_targets:\n    - service_id: "ollama_ad73b280"\n'
                    '    - host: mel2073\n      port: 9100\n', site="local", runtime="host")
    script = render_job(job)
    assert "ollama_ad73b280 \"$orch_host:$orch_port\" >> \"$ORCH_PROM_CONFIG\"" in script
    assert "mel2073 mel2073:9100 >>" in script
    with pytest.raises(RecipeError) as error:
        parse_job("service:\n  name: prometheus\n  monitoring_targets:\n    - host: mel2073\n", "p.yaml")
    assert str(error.value.problems[0]).startswith("p.yaml:4: service.monitoring_targets[0].port: is required with host")


def test_a_service_target_without_a_port_is_scraped_on_the_port_its_endpoint_file_gives(tmp_path):
    from orch.kinds.prometheus import config_lines

    job = parse_job('service:\n  name: prometheus\n  monitoring_targets:\n    - service_id: "ollama_ad73b280"\n'
                    '  health_check:\n    timeout: 5\n', site="local", runtime="host")
    (tmp_path / "endpoints").mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "endpoints" / "ollama_ad73b280.json").write_text(
        json.dumps({"name": "ollama", "host": "node7", "port": 11434, "metrics_port": None}))
    script = "orch_log() { printf '%s\\n' \"$*\" >&2; }\n" + "\n".join(config_lines(job)) + "\n"
    env = {"ORCH_ENDPOINTS_DIR": str(tmp_path / "endpoints"), "ORCH_RUN_DIR": str(tmp_path), "ORCH_LOCAL": "127.0.0.1",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    config = (tmp_path / "state" / "prometheus.yml").read_text()
    assert "  - job_name: 'ollama_ad73b280'\n    static_configs:\n      - targets: ['node7:11434']\n" in config
