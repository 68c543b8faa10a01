"""orch tunnel: the pure part (orch.tunnel), the command through ``python -m orch`` on hand-made
registry records, and one tunnel for real through an sshd on loopback.

The CLI tests put stand-ins for ``ssh`` (it notes its arguments and runs the
remote command on this machine, so the login node is this one), ``squeue``,
``sacct`` and ``scontrol`` first on PATH: no scheduler and no network is needed.
"""
import http.server
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT
from orch import tunnel
from orch.argv import parse_remote
from test_services import free_port, http_json

LOGIN = "u100@login.lxp.lu:8822"
GRAFANA_TUNNEL = "ssh -N -L 3000:mel2073:3000 -o ExitOnForwardFailure=yes -o ConnectTimeout=15 -p 8822 u100@login.lxp.lu"


# ------------------------------------------------------------------ the pure part


def test_tunnel_argv_forwards_the_local_port_through_the_login_node():
    argv = tunnel.tunnel_argv(parse_remote("u@login:2222", options=("-i", "key")), "mel2073", 3000, 13000, "/etc/my ssh")
    assert argv == ("ssh", "-N", "-L", "13000:mel2073:3000", "-o", "ExitOnForwardFailure=yes", "-o", "ConnectTimeout=15",
                    "-F", "/etc/my ssh", "-p", "2222", "-i", "key", "u@login")
    # no shared connection: with one, ssh would hand the forward to a background master and return at once
    assert not any(word.startswith("Control") for word in argv)
    assert shlex.split(tunnel.command_text(argv)) == list(argv)


@pytest.mark.parametrize("endpoint", [
    None, "", "not json", "[]", {"host": "h"}, {"port": 3000}, {"host": "h", "port": "3000"}, {"host": "h", "port": 0},
    {"host": "h", "port": 70000}, {"host": "h", "port": True}, {"host": "-oProxyCommand=touch x", "port": 22},
    {"host": "a b", "port": 1}, {"host": "h:1", "port": 1}, {"host": "", "port": 1},
])
def test_endpoint_address_is_none_for_anything_but_a_host_and_a_port(endpoint):
    assert tunnel.endpoint_address(endpoint) is None


def test_endpoint_address_reads_endpoint_files_of_this_run_only():
    text = json.dumps({"name": "grafana", "orch_id": "g1", "host": "mel2073", "port": 3000})
    assert tunnel.endpoint_address(text, "g1") == ("mel2073", 3000)
    assert tunnel.endpoint_address(text) == ("mel2073", 3000)
    assert tunnel.endpoint_address(text, "other") is None


def test_a_service_is_found_by_alias_then_name_then_job_name_and_clients_are_not_services():
    experiment = {"role": "experiment"}
    members = [
        {"id": "r1", "role": "service", "alias": "cache", "name": "redis", "job_name": "redis_r1"},
        {"id": "c1", "role": "client", "alias": "bench", "name": "redis_benchmark", "job_name": "redis_benchmark_c1"},
    ]
    assert [tunnel.service_named(experiment, members, key)["id"] for key in ("cache", "redis", "redis_r1")] == ["r1"] * 3
    assert tunnel.service_named(experiment, members, "bench") is None
    assert tunnel.service_names(tunnel.services(experiment, members)) == ["cache"]
    single = {"id": "s1", "role": "service", "name": "grafana", "job_name": "grafana_s1"}
    assert tunnel.service_named(single, [], "grafana") is single
    assert tunnel.services({"role": "client", "name": "x"}, []) == []


# ------------------------------------------------------------------ the command

FAKE_SSH = r"""#!/bin/bash
# ssh, as far as orch can tell: notes its arguments and runs the remote command (after --) here
printf '%s\n' "$*" >> "$ORCH_TEST_SSH_LOG"
while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
[ $# -gt 0 ] || exit 0  # no remote command: a tunnel, which is only noted
shift
exec bash -c "$1"
"""
FAKE_SQUEUE = '#!/bin/bash\ncat "$ORCH_TEST_SQUEUE" 2>/dev/null\nexit 0\n'
UNKNOWN_JOB = "#!/bin/bash\nexit 1\n"


class Registry:
    """An ``ORCH_HOME`` with hand-made run records, and the environment that runs ``orch`` on it."""

    def __init__(self, tmp_path):
        self.base = tmp_path
        self.home = tmp_path / "orch-home"
        self.ssh_log = tmp_path / "ssh.log"
        self.squeue = tmp_path / "squeue.txt"
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for name, text in (("ssh", FAKE_SSH), ("squeue", FAKE_SQUEUE), ("sacct", UNKNOWN_JOB), ("scontrol", UNKNOWN_JOB)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        self.env = {k: v for k, v in os.environ.items() if k != "ORCH_SSH_CONFIG"}
        self.env.update(ORCH_HOME=str(self.home), PYTHONPATH=str(ROOT), PATH="%s:%s" % (bin_dir, os.environ["PATH"]),
                        ORCH_TEST_SSH_LOG=str(self.ssh_log), ORCH_TEST_SQUEUE=str(self.squeue))

    def add(self, **record):
        """Write a run record as orch's registry keeps it (runs/<id>/run.json)."""
        from orch.runrecord import Run, as_json

        full = {"kind": record.get("name", "x"), "reason": "", "ready": False, "node": "", "elapsed": "", "endpoint": None,
                "remote": LOGIN, "site": "meluxina", "runtime": "apptainer", "created_at": 1.0, "history": [],
                "recipe": "<test>"}
        full.update(record)
        full.setdefault("job_name", "%s_%s" % (full["name"], full["id"]))
        full.setdefault("run_dir", str(self.base / "runs" / full["id"]))
        full.setdefault("endpoints_dir", str(self.base / "endpoints"))
        folder = self.home / "runs" / full["id"]
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(as_json(Run.create(full)))
        return full

    def orch(self, *args, env=None):
        return subprocess.run([sys.executable, "-m", "orch", *args], capture_output=True, text=True, timeout=60,
                              env=dict(self.env, **(env or {})))


def endpoint(run_id, name, host, port):
    return {"name": name, "kind": name, "orch_id": run_id, "job_id": "", "host": host, "port": port, "metrics_port": None,
            "run_dir": "/nowhere"}


@pytest.fixture
def study(tmp_path):
    """An experiment on a login node: Grafana ready, a Redis (as "cache") still pending, a client."""
    registry = Registry(tmp_path)
    registry.add(id="g1", name="grafana", role="service", alias="grafana", experiment="e1a2b3c4", job_id="101",
                 state="running", ready=True, endpoint=endpoint("g1", "grafana", "mel2073", 3000))
    registry.add(id="r1", name="redis", role="service", alias="cache", experiment="e1a2b3c4", job_id="102", state="pending")
    registry.add(id="c1", name="redis_benchmark", role="client", alias="bench", experiment="e1a2b3c4", job_id="103",
                 state="pending")
    registry.add(id="e1a2b3c4", name="study", kind="experiment", role="experiment", job_id=None, state="running",
                 members=[{"id": "g1", "role": "service", "alias": "grafana"}, {"id": "r1", "role": "service", "alias": "cache"},
                          {"id": "c1", "role": "client", "alias": "bench"}])
    registry.squeue.write_text("101|RUNNING|mel2073|1:00|None\n102|PENDING||0:00|Resources\n103|PENDING||0:00|Dependency\n")
    return registry


def test_tunnel_prints_the_ssh_command_then_the_url_to_open(study):
    result = study.orch("tunnel", "e1a2b3c4", "grafana")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [GRAFANA_TUNNEL, "http://localhost:3000/"]


def test_tunnel_takes_a_local_port_and_orchs_ssh_config(study, tmp_path):
    config = tmp_path / "my ssh config"
    result = study.orch("tunnel", "e1a2", "grafana", "--local-port", "13000", env={"ORCH_SSH_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    command, url = result.stdout.splitlines()
    assert shlex.split(command) == ["ssh", "-N", "-L", "13000:mel2073:3000", "-o", "ExitOnForwardFailure=yes",
                                    "-o", "ConnectTimeout=15", "-F", str(config), "-p", "8822", "u100@login.lxp.lu"]
    assert url == "http://localhost:13000/"


@pytest.mark.parametrize("name", ["nope", "bench"])
def test_an_unknown_service_is_one_line_listing_the_runs_services_and_exit_2(study, name):
    result = study.orch("tunnel", "e1a2b3c4", name)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "orch: e1a2b3c4 has no service %r (its services: grafana, cache)\n" % name


def test_a_bad_local_port_is_exit_2(study):
    result = study.orch("tunnel", "e1a2b3c4", "grafana", "--local-port", "70000")
    assert result.returncode == 2 and result.stderr == "orch: --local-port: 70000 is not a port (1-65535)\n"


def test_a_service_that_is_not_ready_is_a_clear_error_and_exit_1(study):
    result = study.orch("tunnel", "e1a2b3c4", "cache")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "orch: cache (r1) has published no endpoint yet (state pending): orch wait r1 --state ready\n"


def test_the_endpoint_file_serves_when_the_record_has_no_endpoint(study):
    """Redis running, its ready marker not read yet: its endpoint file (under its job name) says where it is."""
    study.squeue.write_text("101|RUNNING|mel2073|1:00|None\n102|RUNNING|mel2074|0:10|None\n")
    (study.base / "endpoints").mkdir()
    (study.base / "endpoints" / "redis_r1.json").write_text(json.dumps(endpoint("r1", "redis", "mel2074", 6379)))
    result = study.orch("tunnel", "e1a2b3c4", "cache")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("ssh -N -L 6379:mel2074:6379 ")
    # read on the login node, through ssh, as every file of a remote run is
    assert "cat %s" % (study.base / "endpoints" / "redis_r1.json") in study.ssh_log.read_text()


def test_another_runs_endpoint_file_of_the_same_name_is_not_taken(study):
    study.squeue.write_text("102|RUNNING|mel2074|0:10|None\n")
    (study.base / "endpoints").mkdir()
    (study.base / "endpoints" / "redis.json").write_text(json.dumps(endpoint("someone-else", "redis", "mel2099", 6379)))
    result = study.orch("tunnel", "e1a2b3c4", "cache")
    assert result.returncode == 1 and "has published no endpoint yet (state running)" in result.stderr


def test_a_service_that_has_ended_is_a_clear_error_and_exit_1(study):
    """SLURM has forgotten Grafana's job; its finished marker says it was stopped."""
    study.squeue.write_text("")
    state = study.base / "runs" / "g1" / "state"
    state.mkdir(parents=True)
    (state / "finished").write_text('{"exit_code": 143, "reason": "stopped by signal"}\n')
    result = study.orch("tunnel", "e1a2b3c4", "grafana")
    assert result.returncode == 1
    assert result.stderr == "orch: grafana (g1) has ended (cancelled): nothing to tunnel to\n"


def test_a_local_run_needs_no_tunnel_and_gets_the_services_url(tmp_path):
    registry = Registry(tmp_path)
    registry.add(id="s1", name="grafana", role="service", remote=None, job_id="7", state="running", ready=True,
                 endpoint=endpoint("s1", "grafana", "127.0.0.1", 3000))
    registry.squeue.write_text("7|RUNNING|localhost|0:05|None\n")
    result = registry.orch("tunnel", "s1", "grafana")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "http://127.0.0.1:3000/\n"
    assert "no tunnel needed" in result.stderr
    assert not registry.ssh_log.exists()


def test_exec_runs_the_printed_command(study):
    result = study.orch("tunnel", "e1a2b3c4", "grafana", "--exec")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [GRAFANA_TUNNEL, "http://localhost:3000/"]
    assert study.ssh_log.read_text().splitlines()[-1] == GRAFANA_TUNNEL[len("ssh "):]


# ------------------------------------------------------------------ one tunnel, for real


class Answering(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"service": "behind the login node"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_exec_holds_a_real_tunnel_until_it_is_stopped(tmp_path, sshd):
    """ssh through an sshd on loopback (the login node) to an HTTP server (the compute node's service)."""
    ssh_port, client_config = sshd
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    registry = Registry(tmp_path)
    # no job id: the scheduler is not asked (this test is about ssh), so nothing but the tunnel uses ssh
    registry.add(id="s1", name="grafana", role="service", remote="root@127.0.0.1:%d" % ssh_port, job_id=None,
                 state="running", ready=True, endpoint=endpoint("s1", "grafana", "127.0.0.1", server.server_address[1]))
    local = free_port()
    env = dict(registry.env, ORCH_SSH_CONFIG=client_config, PATH=os.environ["PATH"])  # the real ssh
    proc = subprocess.Popen([sys.executable, "-m", "orch", "tunnel", "s1", "grafana", "--local-port", str(local), "--exec"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = http_json("http://127.0.0.1:%d/" % local, timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("no tunnel (ssh exited %s): %s" % (proc.poll(), proc.stderr.read() if proc.poll() is not None else ""))
                time.sleep(0.2)
        assert answer == {"service": "behind the login node"}
        time.sleep(1)
        assert proc.poll() is None, "the tunnel went to the background instead of staying with the command"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        server.shutdown()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", local)) != 0, "the tunnel outlived its command"
