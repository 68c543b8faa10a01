"""orch.clients.redis_benchmark against a real Redis (no SLURM).

The server is the shipped redis recipe rendered for the host runtime on a free
loopback port and run with bash (tests/test_services.py's ``Run``); the client
runs as a subprocess, as the rendered client job runs it. Skips when
redis-server or redis-benchmark is missing, unless CI is set (then it fails).
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, children, finish
from test_services import Run, free_port, need, shipped, with_port

PASSWORD = "s3cret $pw 'q"


def service_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "APPTAINER"))}
    env.pop("TMPDIR", None)
    env.pop("REDISCLI_AUTH", None)
    return env


def stop(run):
    """SIGTERM to the script, which stops redis (redis-server rewrites its title and environment,
    so Run.kill_everything alone cannot find it); then whatever is left."""
    try:
        if run.proc is not None and run.proc.poll() is None:
            run.terminate()
    finally:
        run.kill_everything()


def start_redis(base, text):
    port = free_port()
    base.mkdir()
    run = Run(base, "redis", with_port(text, port), service_env()).start()
    run.wait_ready(60)
    return run, port


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    need("redis-server", "redis-benchmark")
    run, port = start_redis(tmp_path_factory.mktemp("redis") / "plain", shipped("redis"))
    try:
        yield port
    finally:
        stop(run)


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory):
    need("redis-server", "redis-benchmark")
    text = shipped("redis").replace("  maxmemory: 2gb\n", "  maxmemory: 2gb\n  password: %s\n" % json.dumps(PASSWORD))
    assert "password" in text
    run, port = start_redis(tmp_path_factory.mktemp("redis") / "auth", text)
    try:
        yield port
    finally:
        stop(run)


def client(port, out, *words, env=None, duration=30, wrap=()):
    command = [sys.executable, "-m", "orch.clients.redis_benchmark", "--host", "127.0.0.1", "--port", str(port),
               "--duration", str(duration), *words, "--output", str(out)] + (["--", *wrap] if wrap else [])
    environment = dict(service_env(), PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)


def check_document(doc):
    assert doc["schema"] == "orch.result/1"
    assert doc["run"]["client"] == "redis_benchmark"
    assert doc["environment"]["tool"] == "redis-benchmark"
    assert doc["environment"]["tool_version"] and doc["environment"]["tool_version"][0].isdigit()
    assert doc["raw"]["native_output"], "redis-benchmark's own output is kept"


def test_set_get_gives_redis_benchmarks_figures(redis_port, tmp_path):
    out = tmp_path / "r.json"
    code, err = finish(client(redis_port, out, "--requests", "20000", "--clients", "10", "--tests", "set,get"))
    assert code == 0, err
    doc = json.loads(out.read_text())
    check_document(doc)
    assert doc["run"]["partial"] is False
    tests = doc["domain"]["tests"]
    assert sorted(tests) == ["get", "set"]
    for name, row in tests.items():
        assert row["completed"] is True and row["requests"] == 20000
        assert row["requests_per_s"] > 1000, row
        lat = row["latency_ms"]
        assert 0 <= lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], lat
        assert lat["min"] <= lat["avg"] <= lat["max"]
    # overall: sum of completed over sum of the tests' own times, between the two tests' rates
    rate = doc["throughput"]["requests_per_s"]
    rates = [row["requests_per_s"] for row in tests.values()]
    assert min(rates) * 0.999 <= rate <= max(rates) * 1.001
    assert doc["counts"]["completed"] == 40000 and doc["counts"]["failed"] == 0
    assert doc["domain"]["pipeline"] == 1 and doc["domain"]["clients"] == 10 and doc["domain"]["data_size"] == 3
    assert "no cross-test merge" in doc["domain"]["percentiles"]
    # the CSV is there verbatim
    native = doc["raw"]["native_output"]
    assert [n["command"][n["command"].index("-t") + 1] for n in native] == ["set", "get"]
    assert native[0]["stdout"].startswith('"test","rps"')


def test_sigterm_mid_test_stops_redis_benchmark_and_writes_a_partial_document(redis_port, tmp_path):
    out = tmp_path / "r.json"
    proc = client(redis_port, out, "--requests", "5000000", "--clients", "10", "--tests", "set,get")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None and not children(proc.pid):
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, 15)
    assert code == 143, err
    doc = json.loads(out.read_text())
    check_document(doc)
    assert doc["run"]["partial"] is True
    assert doc["domain"]["tests"]["set"]["completed"] is False
    assert doc["domain"]["tests"]["set"]["stopped"] == "signal"
    assert "get" not in doc["domain"]["tests"]
    assert doc["counts"]["completed"] == 0
    assert not children(proc.pid)


def test_sigterm_after_a_finished_test_writes_it(redis_port, tmp_path):
    out = tmp_path / "r.json"
    proc = client(redis_port, out, "--requests", "20000", "--clients", "10", "--tests", "set,get,incr,lpush,rpush,lpop")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        if any(b"incr" in words for words in children(proc.pid)):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, 15)
    assert code == 143, err
    doc = json.loads(out.read_text())
    assert doc["run"]["partial"] is True
    done = {t for t, row in doc["domain"]["tests"].items() if row["completed"]}
    assert {"set", "get"} <= done, doc["domain"]["tests"]
    assert doc["counts"]["completed"] == 20000 * len(done)
    assert doc["throughput"]["requests_per_s"] > 1000


def test_duration_bounds_a_run_redis_benchmark_cannot_time(redis_port, tmp_path):
    out = tmp_path / "r.json"
    began = time.monotonic()
    code, err = finish(client(redis_port, out, "--requests", "50000000", "--tests", "set", duration=1))
    elapsed = time.monotonic() - began
    # about 1 s on an idle machine; 50 M requests would take about ten minutes
    assert 1 <= elapsed < 15, "took %.1f s" % elapsed
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["run"]["partial"] is True
    assert doc["domain"]["tests"]["set"] == {"completed": False, "stopped": "duration",
                                             "stopped_after_s": doc["domain"]["tests"]["set"]["stopped_after_s"]}
    assert any("--duration" in reason for reason in doc["fidelity"]["reasons"])


def test_wrong_port_fails_clearly_with_a_document(tmp_path):
    need("redis-benchmark")
    out = tmp_path / "r.json"
    began = time.monotonic()
    code, err = finish(client(free_port(), out, "--requests", "1000", "--tests", "set,get"))
    assert time.monotonic() - began < 10
    assert code == 1
    assert "cannot connect to redis at 127.0.0.1" in err and "refused" in err
    doc = json.loads(out.read_text())
    check_document_failed(doc)


def check_document_failed(doc):
    assert doc["schema"] == "orch.result/1"
    assert doc["counts"]["failed"] > 0 and doc["counts"]["completed"] == 0
    assert doc["counts"]["errors"]
    assert doc["throughput"]["requests_per_s"] is None


def test_password_reaches_redis_benchmark_and_stays_out_of_the_results(redis_with_password, tmp_path):
    out = tmp_path / "r.json"
    code, err = finish(client(redis_with_password, out, "--requests", "5000", "--clients", "5", "--tests", "set",
                              env={"REDISCLI_AUTH": PASSWORD}))
    assert code == 0, err
    text = out.read_text()
    assert PASSWORD not in text and "s3cret" not in text
    doc = json.loads(text)
    assert doc["domain"]["tests"]["set"]["requests_per_s"] > 1000
    assert doc["parameters"]["password_set"] is True
    assert "<redacted>" in doc["raw"]["native_output"][0]["command"]
    # no password, or a wrong one: a clear message, no hang
    for env in ({}, {"REDISCLI_AUTH": "wrong"}):
        code, err = finish(client(redis_with_password, out, "--requests", "1000", "--tests", "set", env=env))
        assert code == 1
        assert ("NOAUTH" in err or "WRONGPASS" in err) and "redis at 127.0.0.1" in err, err
        check_document_failed(json.loads(out.read_text()))


def test_the_kind_exports_the_password_and_keeps_it_off_the_command_line():
    from orch import parse_job, render_job

    text = (ROOT / "recipes/clients/redis_benchmark.yaml").read_text().replace(
        "    tests: \"set,get\"\n", "    tests: \"set,get\"\n    password: \"pa$$ 'w\"\n")
    script = render_job(parse_job(text, site="local", runtime="host"))
    assert "export ORCH_ENV_REDISCLI_AUTH='pa$$ '\"'\"'w'" in script
    args = next(line for line in script.splitlines() if "orch_args=(" in line)
    assert "pa$$" not in args and "--clients 50" in args


def test_csv_is_read_by_its_header_old_and_new():
    from orch.clients.redis_benchmark import overall_rate, parse_csv

    new = ('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"\n'
           '"SET","75187.97","0.077","0.024","0.071","0.119","0.191","1.415"\n'
           '"LRANGE_100 (first 100 elements)","20000.00","1.0","0.5","0.9","1.5","2.0","3.0"\n')
    rows = parse_csv(new)
    assert rows["set"] == {"requests_per_s": 75187.97, "latency_ms": {
        "avg": 0.077, "min": 0.024, "p50": 0.071, "p95": 0.119, "p99": 0.191, "max": 1.415}}
    assert rows["lrange_100 (first 100 elements)"]["latency_ms"]["p99"] == 2.0
    assert parse_csv('"test","rps"\n"GET","1234.5"\n') == {"get": {"requests_per_s": 1234.5, "latency_ms": None}}
    assert parse_csv('"PING_INLINE","99.0"\n')["ping_inline"]["requests_per_s"] == 99.0
    completed, seconds, rate = overall_rate({"a": {"requests": 1000, "requests_per_s": 1000.0},
                                             "b": {"requests": 1000, "requests_per_s": 500.0}})
    assert (completed, seconds) == (2000, 3.0) and abs(rate - 2000 / 3.0) < 1e-9


def test_the_native_tool_runs_through_the_words_after_the_double_dash(redis_port, tmp_path):
    # how a client job runs redis-benchmark in the client's image: `... -- apptainer exec ... IMAGE`;
    # here a wrapper that notes each command it is given and runs it
    log = tmp_path / "wrapped.log"
    wrapper = tmp_path / "in-image"
    wrapper.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> %s\nexec "$@"\n' % log)
    wrapper.chmod(0o755)
    out = tmp_path / "r.json"
    code, err = finish(client(redis_port, out, "--requests", "2000", "--tests", "set", wrap=(str(wrapper),)))
    assert code == 0, err
    ran = log.read_text().splitlines()
    assert ran[0] == "redis-benchmark --version" and ran[1].startswith("redis-benchmark -h 127.0.0.1 -p %d " % redis_port)
    doc = json.loads(out.read_text())
    assert doc["domain"]["tests"]["set"]["completed"] is True
    assert doc["raw"]["native_output"][0]["command"][:2] == [str(wrapper), "redis-benchmark"]
