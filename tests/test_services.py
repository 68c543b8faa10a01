"""Tier 2: real processes, no scheduler.

Each shipped service recipe (Redis, MariaDB, Prometheus, Chroma) is rendered
for the ``host`` runtime and the ``local`` site on a free loopback port and run
with plain ``bash``, as SLURM would run it: the test waits for the endpoint
file, talks to the service with its real client, sends the script SIGTERM
(SLURM's ``--signal=B:TERM``) and checks the exit status, ``state/finished``
and that nothing the run started is left. More tests check the failure path
of a program that exits at once; ``test_readiness`` those of one that never
becomes ready.

A test skips when its program is missing, unless ``CI`` is set: there it
fails, since CI installs everything with ``scripts/install-test-deps``.
Every wait is bounded; everything listens on 127.0.0.1 only.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import ROOT

CHROMA_VENV = Path(os.environ.get("ORCH_CHROMA_VENV") or "/opt/orch/chroma-venv")
STOP_BOUND = 40  # s: the script's own stop wait is grace - 5 = 25 s, then KILL


def in_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def need(*programs, path=None):
    """Skip (fail under CI) unless every program is on ``path`` (default: PATH)."""
    missing = [p for p in programs if not shutil.which(p, path=path)]
    if missing:
        message = "not installed: %s (scripts/install-test-deps installs it)" % ", ".join(missing)
        if in_ci():
            pytest.fail("CI is set but " + message)
        pytest.skip(message)


def test_a_missing_program_skips_here_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        need("orch-no-such-program")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        need("orch-no-such-program")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_port(text, port):
    """A shipped recipe's text with its ``ports`` list replaced by ``[port]``."""
    changed, count = re.subn(r"(?m)^(  ports:\n)(?:    - \d+\n)+", r"\g<1>    - %d\n" % port, text)
    assert count == 1, "the recipe has no ports block to replace"
    return changed


def processes_of(run_dir):
    """Pids of every live process of this run: its run directory in the command line
    (pgrep -f), or in the ORCH_RUN_DIR that the script exports to all it starts."""
    found = set()
    result = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True, timeout=10)
    found.update(int(pid) for pid in result.stdout.split())
    marker = b"ORCH_RUN_DIR=" + str(run_dir).encode() + b"\0"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                found.add(int(entry.name))
        except OSError:
            continue
    # zombies are gone as far as anyone is concerned
    live = set()
    for pid in found:
        try:
            state = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            live.add(pid)
    return live


class Run:
    """One rendered script, run with bash in its own session."""

    def __init__(self, tmp_path, name, recipe_text, env):
        self.name = name
        self.id = "t" + uuid.uuid4().hex[:10]
        self.base = tmp_path
        self.run_dir = tmp_path / "run"
        self.endpoints = tmp_path / "endpoints"
        self.recipe = tmp_path / ("%s.yaml" % name)
        self.recipe.write_text(recipe_text)
        self.script = tmp_path / "script.sh"
        self.env = env
        self.proc = None
        self.started = None
        self.ready_after = None
        rendered = subprocess.run(
            [sys.executable, "-m", "orch", "render", str(self.recipe), "--runtime", "host", "--site", "local",
             "--id", self.id, "--run-dir", str(self.run_dir), "--endpoints-dir", str(self.endpoints),
             "--no-mkdir", "-o", str(self.script)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=dict(env, PYTHONPATH=str(ROOT)),
        )
        assert rendered.returncode == 0, rendered.stderr

    def start(self):
        """Start the script (again, after it ended: a resubmitted job on the same run directory)."""
        self.close_logs()
        self.starts = getattr(self, "starts", 0) + 1
        self.err_path = self.base / ("script-%d.err" % self.starts)
        self.stdout = open(self.base / ("script-%d.out" % self.starts), "wb")
        self.stderr = open(self.err_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["bash", str(self.script)], stdin=subprocess.DEVNULL, stdout=self.stdout, stderr=self.stderr,
            env=self.env, cwd=self.base, start_new_session=True,
        )
        return self

    def log(self):
        self.stderr.flush()
        return self.err_path.read_text(errors="replace")

    def wait_ready(self, bound):
        """The endpoint file's content, once it is there (bounded; fails at once if the script ends)."""
        path = self.endpoints / ("%s.json" % self.name)
        ready = self.run_dir / "state" / "ready"  # written just after the endpoint files
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if path.exists() and ready.exists():
                self.ready_after = time.monotonic() - self.started
                print("%s ready after %.2f s (%s)" % (self.name, self.ready_after, self.readiness_line()))
                return json.loads(path.read_text())
            if self.proc.poll() is not None:
                pytest.fail("the script ended (%s) before it published an endpoint:\n%s" % (self.proc.returncode, self.log()))
            time.sleep(0.1)
        pytest.fail("no endpoint after %d s:\n%s" % (bound, self.log()))

    def readiness_line(self):
        found = re.search(r"is ready after (\d+) s", self.log())
        return "script: %s s" % found.group(1) if found else "script: ?"

    def wait_exit(self, bound):
        try:
            return self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            pytest.fail("the script did not exit within %d s:\n%s" % (bound, self.log()))

    def terminate(self):
        """SIGTERM to the batch shell only, as ``--signal=B:TERM`` and scancel's first signal do."""
        self.proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        status = self.wait_exit(STOP_BOUND)
        print("%s stopped %.2f s after SIGTERM" % (self.name, time.monotonic() - began))
        return status

    def finished(self):
        return json.loads((self.run_dir / "state" / "finished").read_text())

    def leftovers(self, bound=5.0):
        deadline = time.monotonic() + bound
        while True:
            left = processes_of(self.run_dir)
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.2)

    def kill_everything(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # the services run in sessions of their own (setsid): the script's group does not hold them
        for pid in processes_of(self.run_dir):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # a killed mariadbd leaves its socket (${TMPDIR:-/tmp}/orch-<job>.sock; TMPDIR is unset here)
        Path("/tmp/orch-%s_%s.sock" % (self.name, self.id)).unlink(missing_ok=True)
        self.close_logs()

    def close_logs(self):
        for stream in (getattr(self, "stdout", None), getattr(self, "stderr", None)):
            if stream is not None and not stream.closed:
                stream.close()


@pytest.fixture
def runs(tmp_path, clean_env):
    """``runs(name, recipe_text, path_prefix=None)``: a started Run; killed whatever happens."""
    made = []

    def start(name, recipe_text, path_prefix=None):
        env = dict(clean_env)
        env.pop("TMPDIR", None)  # MariaDB's socket goes to ${TMPDIR:-/tmp}: keep it short
        if path_prefix:
            env["PATH"] = "%s:%s" % (path_prefix, env.get("PATH", ""))
        base = tmp_path / ("%s-%d" % (name, len(made)))
        base.mkdir()
        run = Run(base, name, recipe_text, env)
        made.append(run)
        return run.start()

    try:
        yield start
    finally:
        for run in made:
            run.kill_everything()


def stop_cleanly(run):
    assert run.terminate() == 143, run.log()
    finished = run.finished()
    assert finished["exit_code"] == 143
    assert finished["reason"] == "stopped by signal"
    assert not run.leftovers(), "left running: %s\n%s" % (run.leftovers(0), run.log())


def check_endpoint(run, endpoint, port):
    assert endpoint["name"] == run.name and endpoint["orch_id"] == run.id
    assert endpoint["host"] == "127.0.0.1" and endpoint["port"] == port
    assert json.loads((run.run_dir / "state" / "ready").read_text()) == endpoint


def shipped(name):
    return (ROOT / "recipes" / "services" / ("%s.yaml" % name)).read_text()


def http_json(url, data=None, timeout=10):
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    # loopback only, and no proxy from the environment in between
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=timeout) as response:
        return json.loads(response.read())


# ------------------------------------------------------------------ services


def test_redis_answers_ping_set_get_and_stops_on_sigterm(runs):
    need("redis-server", "redis-cli")
    port = free_port()
    run = runs("redis", with_port(shipped("redis"), port))
    check_endpoint(run, run.wait_ready(60), port)

    def cli(*words):
        result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *words],
                                capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert cli("PING") == "PONG"
    assert cli("SET", "orch:key", run.id) == "OK"
    assert cli("GET", "orch:key") == run.id
    # orch's redis.conf is the one in use: persistence both, maxmemory 2gb
    assert cli("CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]
    assert cli("CONFIG", "GET", "maxmemory").split() == ["maxmemory", str(2 * 1024 ** 3)]
    assert cli("CONFIG", "GET", "dir").split()[1] == str(run.run_dir / "redis-data")
    stop_cleanly(run)


def test_mariadb_serves_the_recipes_database_to_its_user_and_stops_on_sigterm(runs):
    need("mariadbd", "mariadb-install-db", "mariadb", "mysql", "mysqladmin")
    from orch import load_job

    settings = load_job(ROOT / "recipes/services/mysql.yaml", site="local", runtime="host").settings
    port = free_port()
    run = runs("mysql", with_port(shipped("mysql"), port))
    check_endpoint(run, run.wait_ready(150), port)

    def sql(query, user, password, database=None):
        words = ["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", str(port),
                 "-u", user, "--batch", "--skip-column-names", "-e", query]
        if database:
            words.append(database)
        env = dict(os.environ, MYSQL_PWD=password)  # keeps the password off the command line
        return subprocess.run(words, capture_output=True, text=True, timeout=20, env=env)

    result = sql("SELECT note FROM orch_marker WHERE id = 1; SELECT CURRENT_USER(), DATABASE()",
                 settings["user"], settings["password"], settings["database"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "created by init_script"
    assert lines[1].split("\t") == ["%s@localhost" % settings["user"], settings["database"]]
    # the user can write there; root needs the recipe's root_password; no anonymous user is left
    assert sql("CREATE TABLE orch_t (x INT); DROP TABLE orch_t", settings["user"], settings["password"],
               settings["database"]).returncode == 0
    assert sql("SELECT 1", settings["user"], "wrong-password").returncode != 0
    anonymous = sql("SELECT COUNT(*) FROM mysql.user WHERE user = ''", "root", settings["root_password"])
    assert anonymous.returncode == 0, anonymous.stderr
    assert anonymous.stdout.strip() == "0"
    stop_cleanly(run)


def test_redis_with_args_still_gets_the_recipes_persistence_maxmemory_and_port(runs):
    need("redis-server", "redis-cli")
    port = free_port()
    extra = '  persistence: aof\n  maxmemory: 5mb\n  args: ["--loglevel", "warning", "--dir", "."]\n'
    run = runs("redis", MINIMAL % {"port": port, "extra": extra})
    check_endpoint(run, run.wait_ready(60), port)

    def config(name):
        result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "CONFIG", "GET", name],
                                capture_output=True, text=True, timeout=10)
        return result.stdout.split()[1]

    assert (config("appendonly"), config("maxmemory"), config("loglevel")) == ("yes", str(5 * 1024 ** 2), "warning")
    stop_cleanly(run)


def test_mariadb_with_args_uses_the_data_directory_and_socket_orch_set_up(runs):
    """args without --datadir/--socket: orch's are appended, so its setup, readiness check and bootstrap
    work on the server that runs (the recipe's database is there)."""
    need("mariadbd", "mariadb-install-db", "mariadb", "mysql", "mysqladmin")
    port = free_port()
    extra = '  database: argsdb\n  args: ["--user=root", "--bind-address=127.0.0.1", "--skip-name-resolve"]\n' + """  health_check:
    timeout: 90
    retries: 30
    interval: 3
"""
    run = runs("mysql", MINIMAL.replace("name: redis", "name: mysql") % {"port": port, "extra": extra})
    check_endpoint(run, run.wait_ready(150), port)
    assert (run.run_dir / "mysql-data" / "argsdb").is_dir()
    shown = subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", str(port), "-uroot",
                            "--batch", "--skip-column-names", "-e", "SHOW DATABASES LIKE 'argsdb'"],
                           capture_output=True, text=True, timeout=20)
    assert shown.stdout.strip() == "argsdb", shown.stderr
    stop_cleanly(run)


def test_mariadb_runs_again_on_its_own_data_directory(runs):
    """The same script twice on one run directory (a resubmitted or requeued job): the data
    directory is kept, root already has its password, init_script is not run twice."""
    need("mariadbd", "mariadb-install-db", "mariadb", "mysql", "mysqladmin")
    run = runs("mysql", with_port(shipped("mysql"), free_port()))
    run.wait_ready(150)
    stop_cleanly(run)
    for marker in (run.endpoints / "mysql.json", run.run_dir / "state" / "ready"):
        marker.unlink(missing_ok=True)  # so that the wait below sees the second run's
    run.start().wait_ready(150)
    assert "init_script already ran on this data directory" in run.log()
    stop_cleanly(run)


def test_prometheus_answers_queries_and_scrapes_itself(runs):
    need("prometheus", "curl")
    port = free_port()
    run = runs("prometheus", with_port(shipped("prometheus"), port))
    check_endpoint(run, run.wait_ready(90), port)
    base = "http://127.0.0.1:%d" % port
    answer = http_json(base + "/api/v1/query?query=up")
    assert answer["status"] == "success"
    # its own config is in use: it scrapes itself (scrape_interval 5s in the recipe)
    deadline = time.monotonic() + 30
    while True:
        answer = http_json(base + "/api/v1/query?query=" + urllib.request.quote('up{job="prometheus"}'))
        values = [r["value"][1] for r in answer["data"]["result"]]
        if values == ["1"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert values == ["1"], answer
    stop_cleanly(run)


def chroma_bin():
    if (CHROMA_VENV / "bin" / "chroma").exists():
        return str(CHROMA_VENV / "bin")
    need("chroma")  # on PATH, else skip (or fail under CI)
    return None


def test_chroma_answers_its_heartbeat_and_stops_on_sigterm(runs):
    bin_dir = chroma_bin()
    need("curl")
    port = free_port()
    run = runs("chroma", with_port(shipped("chroma"), port), path_prefix=bin_dir)
    check_endpoint(run, run.wait_ready(90), port)
    base = "http://127.0.0.1:%d/api/v2" % port
    beat = http_json(base + "/heartbeat")
    assert isinstance(beat["nanosecond heartbeat"], int) and beat["nanosecond heartbeat"] > 0
    # a write that lands in the run's data directory
    collections = base + "/tenants/default_tenant/databases/default_database/collections"
    made = http_json(collections, {"name": "orch_test"})
    assert made["name"] == "orch_test"
    assert [c["name"] for c in http_json(collections)] == ["orch_test"]
    assert (run.run_dir / "chroma-data" / "chroma.sqlite3").exists()
    stop_cleanly(run)


def test_chroma_probe_stays_on_the_services_own_port():
    """The shipped recipe moved to another port is checked on that port (its endpoint is a path: test_readiness)."""
    from orch import parse_job, render_job

    text = with_port(shipped("chroma"), 18123)
    script = render_job(parse_job(text, site="local", runtime="host"))
    probe = next(line for line in script.splitlines() if line.startswith("orch_probe()"))
    assert ":18123" in probe and ":8000" not in probe and "localhost" not in probe


# ------------------------------------------------------------------ failures


MINIMAL = """service:
  name: redis
  ports:
    - %(port)d
%(extra)s"""

def failure_cases():
    return [
        pytest.param('  command: "false"\n  args: []\n', None, "redis exited with status 1 before it was ready", id="false"),
        pytest.param('  args:\n    - "--no-such-option"\n    - "x"\n', "redis-server",
                     "redis exited with status 1 before it was ready", id="bogus-redis-option"),
    ]


@pytest.mark.parametrize("extra, program, reason", failure_cases())
def test_a_service_that_exits_at_once_fails_the_job_quickly(runs, extra, program, reason):
    if program:
        need(program)
    run = runs("redis", MINIMAL % {"port": free_port(), "extra": extra})
    status = run.wait_exit(15)
    elapsed = time.monotonic() - run.started
    assert status != 0
    assert elapsed < 10, "took %.1f s" % elapsed
    finished = run.finished()
    assert finished["exit_code"] == status
    assert finished["reason"] == reason
    assert "FAILED: " + reason in run.log()
    assert not (run.endpoints / "redis.json").exists()
    assert not run.leftovers(), run.log()
