"""PostgreSQL and pgbench, added as new files only.

Rendered for every site and runtime (``bash -n``, shellcheck), hostile values inert, the
service run for real from its rendered script with the host runtime and loaded by the
rendered pgbench client, and once under the test SLURM (``orch submit``, a client aimed at
it with ``--target``, ``orch results``).

PostgreSQL refuses to run as root, and this suite runs as root: the service runs as an
unprivileged user, ``orchtest`` (created here when missing), in a workspace of its own under
/tmp, with a Python it can run (this interpreter may live under /root: orch and the packages
it needs are copied next to the workspace). On a real cluster jobs never run as root; the
kind itself only refuses root, at once and with its reason.
"""
import importlib.metadata
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, bash_syntax, shellcheck
from orch import render_job
from orch.errors import RecipeError
from orch.recipe import load_job, parse_job
from strategies import HOSTILE, hostile_values, texts, to_yaml, yaml_scalar
from slurm_cluster import slurm_cluster  # noqa: F401  (fixture)
from test_services import free_port, in_ci, need, processes_of, with_port

SERVICE = ROOT / "recipes" / "services" / "postgres.yaml"
CLIENT = ROOT / "recipes" / "clients" / "pgbench.yaml"
COMBINATIONS = [(site, runtime) for site in ("meluxina", "local") for runtime in ("apptainer", "host")]
USER = "orchtest"
# quotes, a command substitution, backticks, $NAME, the password file's separators, SASLprep's mappings
PASSWORD = "pw '\"$(touch /tmp/orch-pwned)`id`;\\:x ä \ufb00\u00a0$HOME"
DATA_DIRECTORY = "$ORCH_RUN_DIR/data dir '$(touch /tmp/orch-pwned)'"
# orch and what it imports on the submit and client paths
PACKAGES = ("toolz", "pyrsistent", "strictyaml", "python-dateutil", "six", "sh")


def service_text(port, password=PASSWORD):
    text = with_port(SERVICE.read_text(), port)
    text = text.replace('  password: "change-me-bench"\n', "  password: %s\n  data_directory: %s\n"
                        % (yaml_scalar(password), yaml_scalar(DATA_DIRECTORY)))
    return text.replace("health_check:\n    timeout: 90\n    retries: 30\n    interval: 3",
                        "health_check:\n    timeout: 60\n    retries: 60\n    interval: 1")


def client_text(clients="4", duration=5, password=PASSWORD):
    text = CLIENT.read_text().replace("  duration: 120\n", "  duration: %d\n" % duration)
    text = text.replace('    clients: "1,8,32"\n', "    clients: %s\n" % yaml_scalar(clients))
    text = text.replace("    scale: 10\n", "    scale: 2\n").replace("    wait_for_service: 300\n", "    wait_for_service: 60\n")
    return text.replace('    password: "change-me-bench"\n', "    password: %s\n" % yaml_scalar(password))


# ------------------------------------------------------------------ rendering


@pytest.mark.parametrize("site,runtime", COMBINATIONS)
@pytest.mark.parametrize("path", [SERVICE, CLIENT], ids=lambda p: p.name)
def test_the_recipe_renders_a_script_that_parses_and_passes_shellcheck(path, site, runtime):
    script = render_job(load_job(path, site=site, runtime=runtime))
    assert bash_syntax(script) == "", (site, runtime)
    assert shellcheck(script) == "", (site, runtime)
    if path == SERVICE:
        assert "change-me-bench" not in script, "the service's password is in its script"
        assert "PASSWORD 'SCRAM-SHA-256$4096:" in script and "local all all peer" in script
        assert ("/usr/lib/postgresql/*/bin" in script) == (runtime == "host")
        assert ("docker://postgres:16" in script) == (runtime == "apptainer")
        assert 'orch_fail "postgres refuses to run as root' in script
    else:
        # for the load generator's environment only (as PGPASSWORD), never a variable of the job's shell
        assert "export ORCH_ENV_PGPASSWORD='change-me-bench'" in script
        assert script.count("change-me-bench") == 1, "the client's password is anywhere but its one variable"
        assert "#SBATCH --array=0-2%1" in script and "--clients 32" in script and "--builtin tpcb-like" in script


def test_a_password_and_names_are_checked():
    problems = {}
    for field, value in (("user", "pg_monitor"), ("database", "a-b"), ("password", "two\nlines"), ("shared_buffers", "1 GB")):
        try:
            parse_job("service:\n  name: postgres\n  %s: %s\n" % (field, yaml_scalar(value)), "r.yaml")
        except RecipeError as error:
            problems[field] = [(p.line, p.field) for p in error.problems]
    assert problems == {f: [(3, "service.%s" % f)] for f in ("user", "database", "password", "shared_buffers")}
    job = parse_job("service:\n  name: postgres\n  environment:\n    POSTGRES_USER: bench\n    POSTGRES_PASSWORD: pw\n")
    assert (job.settings["user"], job.settings["password"]) == ("bench", "pw")


@settings(max_examples=40)
@given(password=texts.filter(lambda t: t and not set(t) & {"\r", "\n", "\0"}), data=hostile_values.filter(bool),
       init=st.lists(st.sampled_from(HOSTILE), max_size=4), runtime=st.sampled_from(("apptainer", "host")),
       site=st.sampled_from(("meluxina", "local")))
def test_hostile_kind_values_render_to_clean_scripts_and_the_password_only_as_its_verifier(password, data, init, runtime, site):
    def script(secret):
        service = {"name": "postgres", "user": "u1", "password": secret, "data_directory": data,
                   "init_script": "\n".join(init) or "SELECT 1;"}
        return render_job(parse_job(to_yaml("service", service), site=site, runtime=runtime, job_id="t"))

    text = script(password)
    assert bash_syntax(text) == "" and shellcheck(text) == ""
    # against the same recipe with another password, only the role's SCRAM verifier differs
    changed = set(text.splitlines()) ^ set(script("another").splitlines())
    verifier = re.compile(r"ALTER ROLE \"u1\" WITH LOGIN PASSWORD 'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+';")
    assert len(changed) == 2 and all(verifier.fullmatch(line) for line in changed), changed
    client = {"name": "pgbench", "parameters": {"password": password, "clients": [1, 2]}}
    text = render_job(parse_job(to_yaml("client", client), site=site, runtime=runtime))
    assert bash_syntax(text) == "" and shellcheck(text) == ""


def test_the_load_generators_parsers_read_pgbench_15s_output():
    from orch.clients.pgbench import parse_init, parse_progress, parse_report, pgpass_line, read_log

    report = parse_report(
        "pgbench (15.18 (Debian 15.18-0+deb12u1))\ntransaction type: <builtin: select only>\nscaling factor: 2\n"
        "query mode: prepared\nnumber of clients: 2\nnumber of threads: 1\nmaximum number of tries: 1\nduration: 2 s\n"
        "number of transactions actually processed: 958\nnumber of failed transactions: 0 (0.000%)\n"
        "latency average = 0.227 ms\nlatency stddev = 0.179 ms\nrate limit schedule lag: avg 0.096 (max 2.718) ms\n"
        "initial connection time = 16.388 ms\ntps = 482.917670 (without initial connection time)\n")
    assert (report["transactions"], report["failed"], report["tps"], report["query_mode"]) == (958, 0, 482.91767, "prepared")
    assert (report["schedule_lag_average_ms"], report["schedule_lag_max_ms"], report["server_version"]) == (0.096, 2.718, "15.18")
    assert parse_report("pgbench (16.1, server 15.18 (Debian))\n")["server_version"] == "15.18"
    rows = parse_progress("progress: 1.0 s, 446.0 tps, lat 0.213 ms stddev 0.191, 0 failed, lag 0.087 ms\n"
                          "progress: 2.0 s, 3729.8 tps, lat 1.067 ms stddev 0.699\n")
    assert rows == [{"t": 1.0, "tps": 446.0, "lat_ms": 0.213, "stddev_ms": 0.191, "failed": 0, "lag_ms": 0.087},
                    {"t": 2.0, "tps": 3729.8, "lat_ms": 1.067, "stddev_ms": 0.699, "failed": None, "lag_ms": None}]
    init = parse_init("creating primary keys...\ndone in 0.22 s (drop tables 0.00 s, create tables 0.00 s, "
                      "client-side generate 0.11 s, vacuum 0.05 s, primary keys 0.06 s).\n")
    assert init == {"total_s": 0.22, "steps": {"drop tables": 0.0, "create tables": 0.0, "client-side generate": 0.11,
                                               "vacuum": 0.05, "primary keys": 0.06}}
    assert pgpass_line("a:b\\c") == "*:*:*:*:a\\:b\\\\c\n"


def test_the_per_transaction_log_is_read_sample_by_sample(tmp_path):
    from orch.clients.pgbench import read_log

    (tmp_path / "txn.1").write_text("0 1 2000 0 100 500000 300\n0 2 skipped 0 100 600000 9000\n1 1 failed 0 100 700000 10\n")
    (tmp_path / "txn.1.1").write_text("2 1 1000 0 101 0 0\n2 2 15")  # the last line cut short by a stop
    log = read_log([tmp_path / "txn.1", tmp_path / "txn.1.1"])
    assert log["latency_ms"] == [2.0, 1.0] and log["lag_ms"] == [0.3, 0.0]
    assert (log["failed"], log["skipped"]) == (1, 1)
    assert log["first_start"] == pytest.approx(100.498) and log["last_end"] == pytest.approx(101.0)


# ------------------------------------------------------------------ an unprivileged user, its workspace and Python


def runs_as(user, words, env, cwd, timeout=120, **options):
    return subprocess.run(words, user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **options)


def copy_site(site):
    """orch and the packages it imports, where any user can read them."""
    shutil.copytree(ROOT / "orch", site / "orch", ignore=shutil.ignore_patterns("__pycache__"))
    for name in PACKAGES:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in dist.files or ():
            source = Path(dist.locate_file(file))
            if file.parts[0] != ".." and source.is_file() and "__pycache__" not in file.parts:
                (site / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, site / file)


@pytest.fixture(scope="module")
def account():
    """``(user, workspace, environment)``: the unprivileged user, a directory it owns, and how it runs orch."""
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail("CI runs as root; these tests make an unprivileged user")
        pytest.skip("needs root to make and become an unprivileged user")
    need("pgbench", "psql", "pg_isready")
    try:
        user = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", USER], check=True, timeout=60)
        user = pwd.getpwnam(USER)
    workspace = Path(tempfile.mkdtemp(prefix="orch-pg-", dir="/tmp"))
    try:
        os.chmod(workspace, 0o755)
        copy_site(workspace / "site")
        (workspace / "bin").mkdir()
        os.chown(workspace, user.pw_uid, user.pw_gid)
        env = {"PATH": "%s:/usr/bin:/bin:/usr/sbin:/sbin" % (workspace / "bin"), "HOME": str(workspace),
               "PYTHONPATH": str(workspace / "site"), "LANG": "C.UTF-8", "ORCH_HOME": str(workspace / "orch-home")}
        env.update({k: v for k, v in os.environ.items() if k in ("SLURM_CONF", "CI")})
        problems = []
        for python in (sys.executable, "/usr/bin/python3"):
            try:
                check = runs_as(user, [python, "-c", "import orch.cli, orch.runs, orch.clients.pgbench"], env, workspace)
            except OSError as error:  # this interpreter under /root
                problems.append("%s: %s" % (python, error))
                continue
            if check.returncode == 0:
                (workspace / "bin" / "python3").symlink_to(python)
                break
            problems.append("%s: %s" % (python, check.stderr.strip().splitlines()[-1:]))
        else:
            pytest.fail("no Python that %s can run with orch: %s" % (USER, problems))
        yield user, workspace, env
    finally:
        for pid in processes_of(workspace):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(workspace, ignore_errors=True)


def render(text, base, name, *options):
    """The recipe ``text`` rendered for the host runtime and the local site into ``base/<name>.sh``."""
    recipe = base / (name + ".yaml")
    recipe.write_text(text)
    script = base / (name + ".sh")
    words = [sys.executable, "-m", "orch", "render", str(recipe), "--runtime", "host", "--site", "local",
             "--no-mkdir", "-o", str(script), *options]
    result = subprocess.run(words, capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    os.chmod(recipe, 0o644)
    os.chmod(script, 0o644)
    return script


class Server:
    """The shipped postgres recipe's script, run with bash as the unprivileged user."""

    def __init__(self, account, port):
        self.user, workspace, self.env = account
        self.base = workspace / "host"
        self.base.mkdir()
        os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        self.port = port
        self.run_dir = self.base / "run"
        self.endpoints = self.base / "endpoints"
        self.script = render(service_text(port), self.base, "postgres", "--id", "host1", "--run-dir", str(self.run_dir),
                             "--endpoints-dir", str(self.endpoints))
        self.data = self.run_dir / "data dir '$(touch /tmp/orch-pwned)'"
        self.sockets = self.run_dir / "sockets"  # short enough: orch keeps the socket in the run directory
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.err = self.base / ("script-%d.err" % self.starts)
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(["bash", str(self.script)], stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=self.env, cwd=self.base, start_new_session=True,
                                         user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return self

    def log(self):
        return self.err.read_text(errors="replace")

    def wait_ready(self, bound=90):
        ready = self.run_dir / "state" / "ready"
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if ready.exists() and (self.endpoints / "postgres.json").exists():
                return json.loads((self.endpoints / "postgres.json").read_text())
            if self.proc.poll() is not None:
                pytest.fail("the script ended (%s) before it was ready:\n%s" % (self.proc.returncode, self.log()))
            time.sleep(0.1)
        pytest.fail("not ready after %d s:\n%s" % (bound, self.log()))

    def psql(self, sql, *options, database="postgres"):
        """SQL as the superuser (this user, peer authentication over the socket): psql's result."""
        return runs_as(self.user, ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", str(self.sockets),
                                   "-p", str(self.port), "-d", database, *options], self.env, self.base, timeout=60, input=sql)

    def stop(self, bound=40):
        """SIGTERM to the batch shell, as scancel does first: its exit status and how long it took."""
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            pytest.fail("the script did not exit within %d s:\n%s" % (bound, self.log()))
        return status, time.monotonic() - began

    def kill(self):
        for pid in processes_of(self.run_dir) | ({self.proc.pid} if self.proc and self.proc.poll() is None else set()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def server(account):
    running = Server(account, free_port()).start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.kill()


def tcp_login(port, user, password, sql="SELECT current_user"):
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10")
    env.pop("PGPASSFILE", None)
    return subprocess.run(["psql", "-X", "-tA", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "benchmark_db", "-c", sql],
                          capture_output=True, text=True, timeout=30, env=env)


# ------------------------------------------------------------------ for real, host runtime


def test_as_root_the_service_refuses_at_once_with_its_reason(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("not root")
    script = render(service_text(free_port()), tmp_path, "postgres", "--id", "root1", "--run-dir", str(tmp_path / "run"),
                    "--endpoints-dir", str(tmp_path / "endpoints"))
    began = time.monotonic()
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})
    assert result.returncode == 1 and time.monotonic() - began < 20, result.stderr
    finished = json.loads((tmp_path / "run" / "state" / "finished").read_text())
    assert finished["reason"].startswith("postgres refuses to run as root")
    assert (tmp_path / "endpoints" / "postgres.failed").exists()
    assert not (tmp_path / "run" / "postgres-data").exists()


def test_the_service_serves_its_role_and_database_and_keeps_the_password_out(server):
    endpoint = json.loads((server.run_dir / "state" / "ready").read_text())
    assert (endpoint["kind"], endpoint["host"], endpoint["port"]) == ("postgres", "127.0.0.1", server.port)
    log = server.log()
    if not shutil.which("postgres", path="/usr/bin:/bin"):  # Debian: the server programs are off PATH
        assert "PostgreSQL programs from /usr/lib/postgresql/" in log, log
    assert (server.data / "PG_VERSION").exists(), "the data directory is not the recipe's"
    assert not os.path.exists("/tmp/orch-pwned")
    ok = tcp_login(server.port, "benchmark_user", PASSWORD, "SELECT current_user, note FROM orch_marker WHERE id = 1")
    assert ok.returncode == 0 and ok.stdout.strip() == "benchmark_user|created by init_script", ok.stderr
    wrong = tcp_login(server.port, "benchmark_user", "not-the-password")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    superuser = tcp_login(server.port, USER, PASSWORD)
    assert superuser.returncode != 0, "the superuser logs in over TCP"
    assert PASSWORD not in server.script.read_text()
    assert PASSWORD not in (server.run_dir / "state" / "bootstrap.sql").read_text()
    settings = server.psql("SHOW listen_addresses; SHOW max_connections; SHOW hba_file;")
    assert settings.stdout.split("\n")[:3] == ["127.0.0.1", "200", str(server.run_dir / "state" / "pg_hba.conf")], settings


@pytest.mark.parametrize("password", ["plain", PASSWORD, "a\u200bb\u00ad", "\u2168 \uff21", "e\u0301", "x\u0221", "\u0627\u0644"])
def test_the_verifier_orch_writes_is_the_one_postgres_makes(server, password):
    from orch.kinds.postgres import scram_verifier

    made = server.psql("SET password_encryption = 'scram-sha-256';\n"
                       "DROP ROLE IF EXISTS orch_check; CREATE ROLE orch_check PASSWORD :'pw';\n"
                       "SELECT rolpassword FROM pg_authid WHERE rolname = 'orch_check';\n", "-v", "pw=" + password)
    assert made.returncode == 0, made.stderr
    stored = made.stdout.strip()
    salt = __import__("base64").b64decode(stored.split(":", 1)[1].split("$", 1)[0])
    assert scram_verifier(password, salt) == stored


def test_the_rendered_client_loads_the_service_and_reports(server, tmp_path):
    script = render(client_text(), tmp_path, "pgbench", "--id", "client1", "--run-dir", str(tmp_path / "run"),
                    "--endpoints-dir", str(server.endpoints))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "run" / "results").glob("*.json")
    text = path.read_text()
    assert PASSWORD not in text, "the password is in the results"
    doc = json.loads(text)
    assert doc["schema"] == "orch.result/1" and doc["run"]["partial"] is False
    assert doc["environment"]["tool"] == "pgbench" and doc["parameters"]["password_set"] is True
    report = doc["domain"]["pgbench"]
    assert report["clients"] == 4 and report["scaling_factor"] == 2 and report["query_mode"] == "prepared"
    assert doc["counts"]["completed"] == report["transactions"] == doc["domain"]["log_transactions"] > 100
    assert doc["counts"]["failed"] == 0
    tps = doc["throughput"]["transactions_per_s"]
    assert tps == report["tps"] > 20
    assert 0.5 < doc["domain"]["log_transactions_per_s"] / tps < 2
    assert 4 <= doc["window"]["duration_s"] < 15, doc["window"]
    lat = doc["latency"]["transaction_ms"]
    assert lat["n"] == report["transactions"] and 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
    assert lat["mean"] == pytest.approx(report["latency_average_ms"], abs=0.0015)
    assert len(doc["domain"]["intervals"]) >= 3 and doc["domain"]["phases"]["init"]["timings"]["total_s"] >= 0
    assert (path.parent / doc["raw"]["requests"]).exists()
    for native in doc["raw"]["native_output"]:
        assert not any(PASSWORD in word for word in native["command"])
    print("host pgbench: %d clients, %.0f tps, p50 %.2f ms, p99 %.2f ms over %d transactions"
          % (report["clients"], tps, lat["p50"], lat["p99"], lat["n"]))


def test_sigterm_mid_run_gives_a_partial_document(server, tmp_path):
    out = tmp_path / "p.json"
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}, PYTHONPATH=str(ROOT), PGPASSWORD=PASSWORD)
    proc = subprocess.Popen([sys.executable, "-m", "orch.clients.pgbench", "--host", "127.0.0.1", "--port", str(server.port),
                             "--duration", "60", "--clients", "2", "--skip-init", "--user", "benchmark_user",
                             "--database", "benchmark_db", "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=40)
    assert proc.returncode == 143, err
    doc = json.loads(out.read_text())
    assert doc["run"]["partial"] is True and doc["domain"]["phases"]["run"]["stopped"] == "signal"
    assert doc["counts"]["completed"] > 0 and doc["throughput"]["transactions_per_s"] > 10
    assert doc["domain"]["pgbench"]["transactions"] is None  # no report: the log's own count
    assert doc["latency"]["transaction_ms"]["n"] == doc["counts"]["completed"]


def test_a_wrong_password_fails_the_client_clearly(server, tmp_path):
    out = tmp_path / "w.json"
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}, PYTHONPATH=str(ROOT), PGPASSWORD="nope")
    result = subprocess.run([sys.executable, "-m", "orch.clients.pgbench", "--host", "127.0.0.1", "--port", str(server.port),
                             "--duration", "5", "--user", "benchmark_user", "--database", "benchmark_db", "--output", str(out)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1 and "password authentication failed" in result.stderr, result.stderr
    doc = json.loads(out.read_text())
    assert doc["run"]["partial"] is True and doc["counts"]["failed"] == 1 and doc["counts"]["completed"] == 0


def test_a_connected_client_does_not_hold_up_the_stop_and_a_restart_keeps_the_data(server):
    session = subprocess.Popen(["psql", "-X", "-h", "127.0.0.1", "-p", str(server.port), "-U", "benchmark_user",
                                "-d", "benchmark_db", "-c", "SELECT pg_sleep(120)"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PGPASSWORD=PASSWORD))
    time.sleep(1)
    status, seconds = server.stop()
    assert status == 143 and seconds < 15, (seconds, server.log())  # a smart shutdown would wait for the session
    assert "received fast shutdown request" in server.log()
    assert json.loads((server.run_dir / "state" / "finished").read_text())["reason"] == "stopped by signal"
    session.wait(timeout=30)
    assert not processes_of(server.run_dir) and not (server.endpoints / "postgres.json").exists()
    initialised = (server.data / "PG_VERSION").stat().st_mtime
    server.start().wait_ready()
    assert "init_script already ran on this data directory" in server.log()
    assert (server.data / "PG_VERSION").stat().st_mtime == initialised
    ok = tcp_login(server.port, "benchmark_user", PASSWORD, "SELECT count(*) FROM orch_marker")
    assert ok.returncode == 0 and ok.stdout.strip() == "1", ok.stderr
    assert server.stop()[0] == 143
    assert not processes_of(server.run_dir)


# ------------------------------------------------------------------ under the test SLURM


@pytest.mark.slurm
def test_under_slurm_a_sweep_aimed_at_the_service_reports_every_point(account, slurm_cluster):  # noqa: F811
    user, workspace, env = account
    base = workspace / "slurm"
    base.mkdir()
    os.chown(base, user.pw_uid, user.pw_gid)
    port = free_port()
    for name, text in (("postgres.yaml", service_text(port)), ("pgbench.yaml", client_text(clients="1,8,32"))):
        (base / name).write_text(text)
        os.chmod(base / name, 0o644)

    def orch(*args, timeout=180):
        return runs_as(user, [str(workspace / "bin" / "python3"), "-m", "orch", *args], env, base, timeout=timeout)

    try:
        submitted = orch("submit", "postgres.yaml", "--site", "local", "--runtime", "host")
        assert submitted.returncode == 0, submitted.stderr
        service_job, service = submitted.stdout.split()
        ready = orch("wait", service, "--state", "ready", "--timeout", "150")
        assert ready.returncode == 0, ready.stderr + orch("logs", service).stdout
        submitted = orch("submit", "pgbench.yaml", "--site", "local", "--runtime", "host", "--target", service)
        assert submitted.returncode == 0, submitted.stderr
        client_job, client = submitted.stdout.split()
        done = orch("wait", client, "--state", "done", "--timeout", "300", timeout=360)
        assert done.returncode == 0, done.stderr + orch("logs", client).stdout
        documents = json.loads(orch("results", client, "--format", "json").stdout)
        assert sorted(d["environment"]["array_task"] for d in documents) == ["0", "1", "2"]
        by_clients = {d["parameters"]["clients"]: d for d in documents}
        assert sorted(by_clients) == [1, 8, 32]
        for doc in documents:
            assert doc["run"]["partial"] is False and doc["counts"]["failed"] == 0
            assert doc["counts"]["completed"] > 50 and doc["throughput"]["transactions_per_s"] > 10
            assert doc["target"]["port"] == port and doc["environment"]["node"]
        table = orch("results", client).stdout
        assert "transactions_per_s" in table and "transaction_ms.p99" in table
        print("\n" + table)
        record = json.loads(orch("status", "--json", service).stdout)[0]
        assert (record["state"], record["job_id"]) == ("running", service_job)
        cancelled = orch("cancel", service)
        assert cancelled.returncode == 0, cancelled.stderr
        assert json.loads(orch("status", "--json", service).stdout)[0]["state"] == "cancelled"
        deadline = time.monotonic() + 20
        while processes_of(record["run_dir"]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not processes_of(record["run_dir"])
        assert "received fast shutdown request" in orch("logs", service).stdout
    finally:
        orch("cancel", "--all")
