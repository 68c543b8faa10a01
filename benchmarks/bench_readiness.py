"""Readiness overhead under the test SLURM: ``orch run`` against the seed tools' fixed sleep.

    python benchmarks/bench_readiness.py [--repetitions 5] [--seed-sleep 30] [--json PATH] [--no-check]

Needs the project's single-node SLURM (``scripts/slurm-testcluster start``) and
Debian's redis-server / redis-benchmark. Each repetition runs both ways, the
order alternating (orch, seed, then seed, orch, ...), each on a free loopback
port, each with its own temporary ``ORCH_HOME`` (the user's registry is never
touched), and cancels what it submitted before the next one starts:

- orch: ``python -m orch run EXPERIMENT --site local --runtime host``, one redis
  service and one redis_benchmark client aimed at it (the experiment of
  tests/test_experiments.py, without its sweep): the client is submitted with
  ``--dependency=after:<service job>``, waits for the service's endpoint file and
  its TCP port, then starts;
- seed: what the seed tools made a user do (its ``scripts/run_redis_parametric.sh``:
  start the service, "Waiting for service to initialize (30s)...", ``sleep 30``,
  then submit the client): ``orch submit service.yaml``, a fixed sleep, then
  ``orch submit client.yaml --target-endpoint http://127.0.0.1:PORT`` (no endpoint
  file, no dependency; the client's one TCP check passes at once).

Timestamps, all wall clock (``time.time()``, redis's ``gettimeofday``, file
mtimes) on this one machine:

- t0: just before ``orch run`` (seed: the service's ``orch submit``) is started;
- t_accept: the first TCP connect to the port that succeeds, from a thread of this
  process that tries every 5 ms from before t0 on (resolution 5 ms);
- then that thread opens one connection and sends MONITOR; from then on redis
  reports every command with its own timestamp. t_client: the client program's
  first command (orch's wrapper sends a PING before it starts redis-benchmark: the
  last PING before the load); t_first: the first load command (the first that is
  not PING/CONFIG/INFO/...; redis-benchmark's first SET). The service's own
  readiness probe (``redis-cli ping``) is a PING from before the endpoint is
  published: never load. MONITOR sees a command only if it was registered before
  it (its registration time is recorded; redis answers MONITOR milliseconds after
  t_accept, the client starts later). The service's probe PINGs all come before
  the client's PING, so a sample that shows no PING before the load may have
  missed the client's first command: it is refused;
- from the run directories: the service's and the client's ``state/started``
  marker (their batch scripts began), the service's ``state/ready`` marker (the
  endpoint was published); mtimes, a few ms coarse.

Readiness overhead = t_first - t_accept. Target (issue 5): the median over
orch's repetitions under 2 s; exit status 1 when missed (``--no-check``: record
only), 2 when no orch repetition produced a figure.
"""
import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 2.0
# ChrisKarg/team10_EUMASTER4HPC2526_challenge, scripts/run_redis_parametric.sh:
# 'echo "    Waiting for service to initialize (30s)..."; sleep 30' between the service and the client
SEED_SLEEP_S = 30.0
POLL_S = 0.005
NOT_LOAD = {"PING", "CONFIG", "INFO", "CLIENT", "COMMAND", "HELLO", "AUTH", "SELECT", "ECHO"}
MONITOR_LINE = re.compile(rb'^\+(\d+\.\d+) \[\d+ ([^\]]*)\] "([^"]*)"')

SERVICE = """service:
  name: redis
  ports: [%(port)d]
  resources:
    time: "00:05:00"
    mem: 1G
  health_check: {timeout: 30, retries: 30, interval: 1}
"""
CLIENT = """client:
  name: redis_benchmark
  duration: 60
  resources:
    time: "00:05:00"
    mem: 1G
  parameters:
    requests: 2000
    tests: set,get
    wait_for_service: 60
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def experiment_text(port):
    """The experiment of tests/test_experiments.py: the same members, inline."""
    def member(text, last):
        lines = text.splitlines()
        return ["    - " + lines[0]] + ["      " + line for line in lines[1:]] + ["      " + last]

    lines = ["experiment:", "  name: readiness", "  services:"] + member(SERVICE % {"port": port}, "as: cache")
    lines += ["  clients:"] + member(CLIENT, "target: cache")
    return "\n".join(lines) + "\n"


class Watcher(threading.Thread):
    """Polls a port until it accepts, then follows redis's MONITOR until the first load command."""

    def __init__(self, port, seconds):
        super().__init__(daemon=True)
        self.port, self.seconds = port, seconds
        self.t_refused = self.t_accept = self.t_monitor = None
        self.commands = []  # (server time, client address, command name) up to the first load command
        self.error = None
        self.done = threading.Event()
        self.stop = threading.Event()

    def run(self):
        try:
            self._follow(time.monotonic() + self.seconds)
        except Exception as error:  # reported with the sample
            self.error = "%s: %s" % (type(error).__name__, error)
        finally:
            self.done.set()

    def _follow(self, deadline):
        while True:
            if self.stop.is_set() or time.monotonic() > deadline:
                raise TimeoutError("port %d never accepted a connection" % self.port)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    self.t_accept = time.time()
                break
            except OSError:
                self.t_refused = time.time()
                time.sleep(POLL_S)
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"MONITOR\r\n")
            buffer = b""
            while True:
                if self.stop.is_set() or time.monotonic() > deadline:
                    raise TimeoutError("no load command within %.0f s (MONITOR %s)"
                                       % (self.seconds, "registered" if self.t_monitor else "never answered"))
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    raise ConnectionError("redis closed the MONITOR connection")
                *lines, buffer = (buffer + chunk).split(b"\r\n")
                for line in lines:
                    if self._line(line):
                        return

    def _line(self, line):
        """True once the first load command is seen."""
        if self.t_monitor is None:
            if line != b"+OK":
                raise RuntimeError("MONITOR answered %r" % line[:80])
            self.t_monitor = time.time()
            return False
        match = MONITOR_LINE.match(line)
        if not match:
            return False
        name = match.group(3).decode(errors="replace").upper()
        self.commands.append((float(match.group(1)), match.group(2).decode(errors="replace"), name))
        return name not in NOT_LOAD


def mtime(path):
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None


def load_record(home, run_id):
    return json.loads((Path(home) / "runs" / run_id / "run.json").read_text())


class Runner:
    """Runs ``python -m orch`` with a temporary ORCH_HOME and remembers every job it submitted."""

    def __init__(self, work):
        self.work = Path(work)
        self.jobs = set()
        self.count = 0

    def fresh(self):
        self.count += 1
        home = self.work / ("home-%d" % self.count)
        env = dict(os.environ, ORCH_HOME=str(home), PYTHONPATH=str(ROOT))
        return home, env

    def orch(self, env, *args, timeout=120):
        return subprocess.run([sys.executable, "-m", "orch", *args], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=str(self.work))

    def forget(self, env, command, ids):
        """``orch stop``/``orch cancel`` what a sample submitted; then make sure SLURM has let go of it."""
        try:
            self.orch(env, command, *ids, timeout=90)
        except subprocess.TimeoutExpired:
            pass
        self.drain()

    def drain(self, seconds=60):
        """Wait (bounded) until none of our jobs is queued or running; scancel those that stay (ours only)."""
        deadline = time.monotonic() + seconds
        cancelled = False
        while self.jobs:
            self.jobs &= active_jobs()
            if not self.jobs:
                return
            if time.monotonic() > deadline:
                if cancelled:
                    print("warning: jobs %s still active" % " ".join(sorted(self.jobs)), file=sys.stderr)
                    return
                subprocess.run(["scancel", *sorted(self.jobs)], capture_output=True, timeout=30)
                cancelled, deadline = True, time.monotonic() + 30
            time.sleep(0.5)


def active_jobs():
    """Ids of the jobs SLURM has not finished with (everyone's: the caller keeps its own)."""
    listed = subprocess.run(["squeue", "-h", "-o", "%i", "-t", "PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED"],
                            capture_output=True, text=True, timeout=30)
    if listed.returncode != 0:
        raise RuntimeError("squeue: %s" % listed.stderr.strip())
    return set(listed.stdout.split())


def node_cpus():
    """(allocated, total) CPUs of the test node."""
    text = subprocess.run(["scontrol", "show", "node", "-o"], capture_output=True, text=True, timeout=30).stdout
    alloc = re.search(r"CPUAlloc=(\d+)", text)
    total = re.search(r"CPUTot=(\d+)", text)
    return (int(alloc.group(1)) if alloc else 0), (int(total.group(1)) if total else 0)


def wait_for_cpus(wanted, seconds):
    """Wait (bounded) until the node has ``wanted`` free CPUs; return (seconds waited, CPUs others held)."""
    began = time.monotonic()
    while True:
        alloc, total = node_cpus()
        if total - alloc >= wanted or time.monotonic() - began > seconds:
            return time.monotonic() - began, alloc
        time.sleep(1)


def sample(runner, approach, seed_sleep, timeout):
    """One run of ``approach`` ('orch' or 'seed'): its timestamps, or an error."""
    home, env = runner.fresh()
    home.mkdir(parents=True)
    port = free_port()
    waited, foreign = wait_for_cpus(2, 180)
    out = {"approach": approach, "port": port, "waited_for_cpus_s": waited, "cpus_held_by_others": foreign,
           "loadavg": os.getloadavg()}
    watcher = Watcher(port, timeout + (seed_sleep if approach == "seed" else 0))
    watcher.start()
    stop = None
    try:
        if approach == "orch":
            path = runner.work / ("experiment-%d.yaml" % runner.count)
            path.write_text(experiment_text(port))
            out["t0"] = time.time()
            ran = runner.orch(env, "run", str(path), "--site", "local", "--runtime", "host")
            out["t_submitted"] = time.time()
            if ran.returncode != 0:
                raise RuntimeError("orch run: %s" % ran.stderr.strip())
            run_id = ran.stdout.split()[0]
            stop = ("stop", (run_id,))
            experiment = load_record(home, run_id)
            members = {m["role"]: load_record(home, m["id"]) for m in experiment["members"]}
            runner.jobs |= {str(m["job_id"]) for m in members.values()}
            if experiment.get("conductor_job_id"):
                runner.jobs.add(str(experiment["conductor_job_id"]))
        else:
            service_path, client_path = runner.work / "service.yaml", runner.work / "client.yaml"
            service_path.write_text(SERVICE % {"port": port})
            client_path.write_text(CLIENT)
            out["t0"] = time.time()
            ran = runner.orch(env, "submit", str(service_path), "--site", "local", "--runtime", "host")
            out["t_submitted"] = time.time()
            if ran.returncode != 0:
                raise RuntimeError("orch submit (service): %s" % ran.stderr.strip())
            service_job, service_id = ran.stdout.split()
            runner.jobs.add(service_job)
            stop = ("cancel", [service_id])
            time.sleep(seed_sleep)  # the seed's fixed wait, from the moment the service's submission returned
            out["t_client_submit"] = time.time()
            ran = runner.orch(env, "submit", str(client_path), "--site", "local", "--runtime", "host",
                              "--target-endpoint", "http://127.0.0.1:%d" % port)
            if ran.returncode != 0:
                raise RuntimeError("orch submit (client): %s" % ran.stderr.strip())
            client_job, client_id = ran.stdout.split()
            runner.jobs.add(client_job)
            stop = ("cancel", [service_id, client_id])
            members = {"service": load_record(home, service_id), "client": load_record(home, client_id)}
        watcher.done.wait(watcher.seconds + 5)
        if watcher.error or not watcher.done.is_set():
            raise RuntimeError(watcher.error or "the watcher did not finish")
        out.update(observed(watcher, members))
    except Exception as error:
        out["error"] = str(error)
    finally:
        watcher.stop.set()
        watcher.join(5)
        if stop:
            runner.forget(env, stop[0], stop[1])
        else:
            runner.drain()
    return out


def observed(watcher, members):
    """The watcher's timestamps and the run directories' markers, with the load's first commands."""
    commands = watcher.commands
    load = commands[-1]
    pings = [c for c in commands[:-1] if c[2] == "PING"]
    service, client = members["service"]["run_dir"], members["client"]["run_dir"]
    out = {
        "t_refused_last": watcher.t_refused,
        "t_accept": watcher.t_accept,
        "t_monitor": watcher.t_monitor,
        "t_client": pings[-1][0] if pings else None,
        "t_first": load[0],
        "first_command": load[2],
        "commands_before_load": [list(c) for c in commands[:-1]],
        "service_started": mtime(service + "/state/started"),
        "service_ready": mtime(service + "/state/ready"),
        "client_started": mtime(client + "/state/started"),
        # when its sbatch had returned, as orch's registry recorded it
        "client_submitted": next((t for state, t, _ in members["client"]["history"] if state == "submitted"), None),
        "job_ids": {role: r["job_id"] for role, r in members.items()},
    }
    if not pings:
        # the client's PING comes after the service's probe PINGs: seeing none means MONITOR came too late
        raise RuntimeError("no PING before the load: MONITOR was registered after the client's first command")
    return out


def figures(s):
    """Durations (s) of one sample; None where a timestamp is missing."""
    def gap(a, b):
        return s[b] - s[a] if s.get(a) is not None and s.get(b) is not None else None

    later = None
    if s.get("service_ready") is not None and s.get("client_started") is not None:
        later = max(s["service_ready"], s["client_started"])
    return {
        "readiness overhead: t_first - t_accept": gap("t_accept", "t_first"),
        "client's first command - t_accept": gap("t_accept", "t_client"),
        "t_first - t0 (orch run/submit to load)": gap("t0", "t_first"),
        "t_accept - t0": gap("t0", "t_accept"),
        "  submission returned - t0": gap("t0", "t_submitted"),
        "  service script started - t0": gap("t0", "service_started"),
        "  t_accept - service script started": gap("service_started", "t_accept"),
        "  endpoint published - t_accept": gap("t_accept", "service_ready"),
        "  client submitted - t0 (seed: after its sleep)": gap("t0", "client_submitted"),
        "  client submitted - service script started": gap("service_started", "client_submitted"),
        "  client script started - client submitted": gap("client_submitted", "client_started"),
        "  client script started - service script started": gap("service_started", "client_started"),
        "  client's first command - max(published, client started)": (s["t_client"] - later) if later and s.get("t_client") else None,
        "  t_first - client's first command": gap("t_client", "t_first"),
    }


def summarise(samples):
    rows = {}
    good = [figures(s) for s in samples if "error" not in s]
    for key in figures({}):
        values = [f[key] for f in good if f[key] is not None]
        rows[key] = {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
                     "values": values} if values else None
    return rows


def cell(row):
    return "%8.3f [%7.3f ..%7.3f]" % (row["median"], row["min"], row["max"]) if row else "%28s" % "-"


def machine_text():
    from machine import cpu_model  # benchmarks/machine.py, beside this script

    def version(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    return "%s, %d CPUs, %s, Python %s, %s, %s" % (
        cpu_model(), os.cpu_count(), platform.platform(), platform.python_version(),
        version("redis-server", "--version"), version("sinfo", "-V"))


def scheduler_setting():
    """The test cluster's scheduling parameters and slots: they set how soon a dependent job starts."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"^SchedulerParameters\s*=\s*(\S*)", config, re.M)
    return "SchedulerParameters=%s, %d CPUs (slots) on the node" % (found.group(1) if found else "?", node_cpus()[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--seed-sleep", type=float, default=SEED_SLEEP_S, help="the seed's fixed wait, seconds (its own: 30)")
    parser.add_argument("--timeout", type=float, default=120, help="bound on one sample's wait for the load, seconds")
    parser.add_argument("--retries", type=int, default=1,
                        help="a sample that failed (e.g. its jobs cancelled by someone else) is run again up to this often")
    parser.add_argument("--json", default=None)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args(argv)
    for program in ("redis-server", "redis-benchmark", "sbatch", "squeue", "scontrol"):
        if not shutil.which(program):
            raise SystemExit("%s is not installed (scripts/install-test-deps, scripts/slurm-testcluster start)" % program)
    if subprocess.run([str(ROOT / "scripts" / "slurm-testcluster"), "status"], capture_output=True, timeout=60).returncode:
        raise SystemExit("the SLURM test cluster is not up: scripts/slurm-testcluster start")
    machine = machine_text()
    print("machine: %s" % machine)
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    setting = scheduler_setting()
    print("test SLURM: %s" % setting)
    tree = subprocess.run(["git", "-C", str(ROOT), "status", "--short", "--", "orch", "scripts/slurm-testcluster"],
                          capture_output=True, text=True).stdout.split("\n")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("orch: %s%s" % (commit, " + uncommitted changes to %d file(s) of orch/, scripts/" % len([t for t in tree if t]) if any(tree) else ""))
    report = {"machine": machine, "scheduler": setting, "commit": commit, "uncommitted": [t for t in tree if t],
              "repetitions": args.repetitions, "seed_sleep_s": args.seed_sleep,
              "target_s": TARGET_S, "loadavg_start": os.getloadavg(), "samples": [], "discarded": []}
    with tempfile.TemporaryDirectory(prefix="orch-readiness-") as work:
        runner = Runner(work)
        try:
            for rep in range(args.repetitions):
                for approach in (("orch", "seed") if rep % 2 == 0 else ("seed", "orch")):
                    for attempt in range(args.retries + 1):
                        s = sample(runner, approach, args.seed_sleep, args.timeout)
                        s["repetition"] = rep + 1
                        if "error" not in s or attempt == args.retries:
                            break
                        print("%d %-4s failed, run again: %s" % (rep + 1, approach, s["error"]), flush=True)
                        report["discarded"].append(s)
                    report["samples"].append(s)
                    f = figures(s)
                    print("%d %-4s %s" % (rep + 1, approach, "ERROR: " + s["error"] if "error" in s else
                          "overhead %.3f s, t0 -> load %.3f s" % (f["readiness overhead: t_first - t_accept"],
                                                                  f["t_first - t0 (orch run/submit to load)"])), flush=True)
        finally:
            runner.drain()
    report["loadavg_end"] = os.getloadavg()
    report["summary"] = {a: summarise([s for s in report["samples"] if s["approach"] == a]) for a in ("orch", "seed")}
    print("\nseconds, median [min .. max] over the repetitions (seed: fixed sleep %.0f s)" % args.seed_sleep)
    print("%-58s %-28s %-28s" % ("", "orch run", "seed (fixed sleep)"))
    for key in figures({}):
        print("%-58s %s %s" % (key, cell(report["summary"]["orch"][key]), cell(report["summary"]["seed"][key])))
    errors = [s for s in report["samples"] if "error" in s]
    for s in errors:
        print("repetition %d %s failed: %s" % (s["repetition"], s["approach"], s["error"]), file=sys.stderr)
    print("load average at end: %.2f %.2f %.2f" % report["loadavg_end"])
    overhead = report["summary"]["orch"]["readiness overhead: t_first - t_accept"]
    met = overhead is not None and overhead["median"] < TARGET_S
    report["target_met"] = met
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if overhead is None:
        print("no orch repetition produced a figure", file=sys.stderr)
        return 2
    print("readiness overhead of orch: median %.3f s, target < %.1f s: %s" % (overhead["median"], TARGET_S, "met" if met else "MISSED"))
    if not met:
        print("TARGET MISSED: readiness overhead median %.3f s >= %.1f s" % (overhead["median"], TARGET_S), file=sys.stderr)
        return 0 if args.no_check else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
