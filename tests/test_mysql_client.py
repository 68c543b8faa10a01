"""orch.clients.mysql_benchmark (sysbench OLTP) against a real MariaDB (no SLURM).

The server is the shipped mysql recipe rendered for the host runtime on a free
loopback port and run with bash (tests/test_services.py's ``Run``); the client runs
as a subprocess with the recipe's user, password and database in MYSQL_USER,
MYSQL_PASSWORD and MYSQL_DATABASE, as the shipped client recipe sets them.
Skips when mariadbd or sysbench is missing, unless CI is set (then it fails).
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

SAMPLE = """sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)

Threads started!

[ 1s ] thds: 2 tps: 670.40 qps: 13496.91 (r/w/o: 9462.52/2687.59/1346.79) lat (ms,95%): 4.25 err/s: 4.00 reconn/s: 0.00
[ 2s ] thds: 2 tps: 797.25 qps: 15967.06 (r/w/o: 11178.54/3192.01/1596.51) lat (ms,95%): 3.07 err/s: 2.00 reconn/s: 0.00
Latency histogram (values are in milliseconds)
       value  ------------- distribution ------------- count
       1.102 |                                         1
       2.106 |******************************           18
       2.145 |**************************************** 25
       4.028 |********                                 5
       7.985 |*                                        1

SQL statistics:
    queries performed:
        read:                            30730
        write:                           8763
        other:                           4383
        total:                           43876
    transactions:                        50   (728.13 per sec.)
    queries:                             43876  (14601.22 per sec.)
    ignored errors:                      7      (2.33 per sec.)
    reconnects:                          0      (0.00 per sec.)

General statistics:
    total time:                          3.0045s
    total number of events:              50

Latency (ms):
         min:                                    1.09
         avg:                                    2.74
         max:                                    7.99
         95th percentile:                        3.96
         sum:                                 6000.58
"""


def service_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "APPTAINER"))}
    env.pop("TMPDIR", None)  # MariaDB's socket goes to ${TMPDIR:-/tmp}: keep it short
    return env


@pytest.fixture(scope="module")
def mysql(tmp_path_factory):
    need("mariadbd", "mariadb-install-db", "mariadb", "sysbench")
    from orch import load_job

    settings = load_job(ROOT / "recipes/services/mysql.yaml", site="local", runtime="host").settings
    port = free_port()
    base = tmp_path_factory.mktemp("mysql") / "server"
    base.mkdir()
    run = Run(base, "mysql", with_port(shipped("mysql"), port), service_env()).start()
    try:
        run.wait_ready(150)
        yield port, settings
    finally:
        try:
            if run.proc.poll() is None:
                run.terminate()  # the script stops mariadbd
        finally:
            run.kill_everything()


def client(mysql, out, *words, password=None, port=None, duration=5):
    server_port, settings = mysql
    env = dict(service_env(), PYTHONPATH=str(ROOT), MYSQL_USER=settings["user"],
               MYSQL_PASSWORD=settings["password"] if password is None else password, MYSQL_DATABASE=settings["database"])
    command = [sys.executable, "-m", "orch.clients.mysql_benchmark", "--host", "127.0.0.1",
               "--port", str(port or server_port), "--duration", str(duration), *words, "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def sysbench_children(pid):
    return [words for words in children(pid) if words and words[0].endswith(b"sysbench")]


def tables_left(mysql):
    port, settings = mysql
    result = subprocess.run(
        ["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", str(port), "-u", settings["user"],
         "--batch", "--skip-column-names", "-e", "SHOW TABLES LIKE 'sbtest%'", settings["database"]],
        capture_output=True, text=True, timeout=20, env=dict(os.environ, MYSQL_PWD=settings["password"]))
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_oltp_read_write_gives_sysbenchs_figures(mysql, tmp_path):
    out = tmp_path / "m.json"
    code, err = finish(client(mysql, out, "--threads", "2", "--tables", "2", "--table-size", "1000",
                              "--workload", "read_write"), 40)
    assert code == 0, err
    text = out.read_text()
    assert mysql[1]["password"] not in text, "the password leaked into the results"
    doc = json.loads(text)
    assert doc["schema"] == "orch.result/1" and doc["run"]["partial"] is False
    assert doc["environment"]["tool"] == "sysbench" and doc["environment"]["tool_version"].startswith("1.")
    assert doc["throughput"]["transactions_per_s"] > 10
    assert doc["throughput"]["queries_per_s"] > doc["throughput"]["transactions_per_s"]
    report = doc["domain"]["sysbench"]
    assert doc["counts"]["completed"] == report["transactions"] == report["events"] > 50
    # sysbench's total time: it stops at its first event past --time=5, so at least 5 s (its report
    # rounds to 0.1 ms); the upper bound is generous (a loaded machine delays that event)
    assert "--time=5" in doc["raw"]["native_output"][2]["command"]
    duration = doc["window"]["duration_s"]
    assert 5 - 1e-3 <= duration < 5 + 5, doc["window"]
    lat = doc["latency"]["transaction_ms"]
    assert lat["n"] == report["events"]
    assert sum(count for _, count in doc["domain"]["histogram"]) == report["events"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] * 1.05, lat
    assert lat["p95"] == report["latency_percentile_ms"] and lat["mean"] == report["latency_avg_ms"]
    assert "bucket midpoints" in lat["method"]
    # one report per second of the run (sysbench skips a report its thread missed by a second: generous)
    seconds = [row["t"] for row in doc["domain"]["intervals"]]
    assert len(seconds) >= 2 and seconds == sorted(set(seconds)), seconds
    assert 1 <= seconds[0] and seconds[-1] <= duration + 1, seconds
    phases = doc["domain"]["phases"]
    assert all(phases[p]["exit_code"] == 0 for p in ("cleanup_before", "prepare", "run", "cleanup")), phases
    for native in doc["raw"]["native_output"]:
        assert "--mysql-password=<redacted>" in native["command"]
    assert not tables_left(mysql)


def test_transactions_per_client_sets_sysbench_events(mysql, tmp_path):
    out = tmp_path / "m.json"
    code, err = finish(client(mysql, out, "--threads", "2", "--transactions-per-client", "40", "--tables", "1",
                              "--table-size", "1000", "--workload", "point_select", duration=20), 40)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["parameters"]["events"] == 80
    assert doc["counts"]["completed"] == 80
    assert "--events=80" in doc["raw"]["native_output"][2]["command"]
    assert doc["window"]["duration_s"] < 10


def test_sigterm_mid_run_writes_a_partial_document_and_cleans_up(mysql, tmp_path):
    out = tmp_path / "m.json"
    proc = client(mysql, out, "--threads", "2", "--tables", "2", "--table-size", "1000", duration=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        if any(b"run" in words for words in sysbench_children(proc.pid)):
            break
        time.sleep(0.05)
    time.sleep(2.5)  # a couple of per-second reports
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, 30)
    assert code == 143, err
    doc = json.loads(out.read_text())
    assert doc["run"]["partial"] is True
    assert doc["domain"]["phases"]["run"]["stopped"] == "signal"
    assert doc["domain"]["phases"]["cleanup"]["exit_code"] == 0
    assert len(doc["domain"]["intervals"]) >= 1
    assert doc["counts"]["completed"] > 0 and doc["throughput"]["transactions_per_s"] > 10
    assert not sysbench_children(proc.pid)
    assert not tables_left(mysql)


@pytest.mark.parametrize("case", ["wrong-port", "wrong-password"])
def test_a_server_that_refuses_fails_clearly(mysql, tmp_path, case):
    out = tmp_path / "m.json"
    if case == "wrong-port":
        proc = client(mysql, out, "--threads", "2", port=free_port())
    else:
        proc = client(mysql, out, "--threads", "2", password="not-the-password")
    began = time.monotonic()
    code, err = finish(proc, 30)
    assert time.monotonic() - began < 15
    assert code == 1
    assert "mysql_benchmark: cannot reach or clean the database" in err
    assert ("Can't connect" in err) if case == "wrong-port" else ("Access denied" in err), err
    doc = json.loads(out.read_text())
    assert doc["counts"]["failed"] == 1 and doc["counts"]["completed"] == 0 and doc["counts"]["errors"]
    assert doc["run"]["partial"] is True


def test_the_run_report_is_parsed():
    from orch.clients.mysql_benchmark import histogram_summary, parse_histogram, parse_intervals, parse_run

    report = parse_run(SAMPLE)
    assert report["transactions"] == 50 and report["transactions_per_s"] == 728.13
    assert report["queries_per_s"] == 14601.22 and report["queries_total"] == 43876
    assert (report["ignored_errors"], report["reconnects"]) == (7, 0)
    assert (report["latency_percentile"], report["latency_percentile_ms"]) == (95, 3.96)
    assert report["total_time_s"] == 3.0045 and report["latency_sum_ms"] == 6000.58
    buckets = parse_histogram(SAMPLE)
    assert buckets == [(1.102, 1), (2.106, 18), (2.145, 25), (4.028, 5), (7.985, 1)]
    lat = histogram_summary(buckets)
    assert lat["n"] == 50 and lat["p50"] == 2.145 and lat["max"] == 7.985
    rows = parse_intervals(SAMPLE)
    assert [r["tps"] for r in rows] == [670.40, 797.25] and rows[0]["read_qps"] == 9462.52 and rows[1]["err_s"] == 2.0


def test_the_kind_renders_user_database_and_password_variable():
    from orch import parse_job, render_job

    text = (ROOT / "recipes/clients/mysql_benchmark.yaml").read_text().replace(
        "    workload: read_write\n",
        "    workload: read_write\n    user: bench\n    database: bench_db\n    password_env: BENCH_PW\n")
    script = render_job(parse_job(text, site="local", runtime="host"))
    args = next(line for line in script.splitlines() if "orch_args=(" in line)
    assert "--user bench" in args and "--database bench_db" in args and "--password-env BENCH_PW" in args
    assert "--threads 8" in args and "--workload read_write" in args
