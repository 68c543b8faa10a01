"""Fidelity of orch's redis client: ``orch.clients.redis_benchmark`` against standalone ``redis-benchmark``.

    python benchmarks/bench_redis_fidelity.py [--repetitions 5] [--json PATH] [--no-check]

One redis-server (persistence off, loopback, a free port) serves both sides in the
same run. For every configuration (clients, data size, pipeline), the two sides run
with the same parameters, alternated (A B, then B A, ...) so that drifts on the
machine hit both:

- standalone: ``redis-benchmark -h -p -c -n -d -P -t set,get --csv`` (one process,
  as a person would type it);
- orch: ``python -m orch.clients.redis_benchmark ... --tests set,get --output F``
  (one redis-benchmark per test, mapped onto orch.result/1).

Compared per test: requests/s, p50 and p99 (redis-benchmark's own figures on both
sides), and the overall requests/s (sum of requests / sum of the tests' times, the
same formula on both sides). Target: the median over repetitions of orch's
overall requests/s / the standalone's in the same repetition within 5 % of 1 (exit status 1 when missed, unless
``--no-check``). The spread (min..max) of each side is printed too: a
difference inside it is noise, not the client.
"""
import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orch.clients.redis_benchmark import overall_rate, parse_csv  # noqa: E402

CONFIGS = (
    {"clients": 50, "data_size": 256, "pipeline": 1, "requests": 200000},
    {"clients": 50, "data_size": 256, "pipeline": 16, "requests": 2000000},
)
TESTS = ("set", "get")
TARGET = 0.05


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(directory):
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ok = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True).stdout.strip()
        if ok == "PONG":
            return proc, port
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not answer on port %d" % port)


def standalone(port, config):
    words = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(config["clients"]),
             "-n", str(config["requests"]), "-d", str(config["data_size"]), "-P", str(config["pipeline"]),
             "-t", ",".join(TESTS), "--csv"]
    began = time.perf_counter()
    result = subprocess.run(words, capture_output=True, text=True, timeout=600, check=True)
    wall = time.perf_counter() - began
    rows = parse_csv(result.stdout)
    for row in rows.values():
        row["requests"] = config["requests"]
    return rows, wall


def orch_client(port, config, out):
    words = [sys.executable, "-m", "orch.clients.redis_benchmark", "--host", "127.0.0.1", "--port", str(port),
             "--duration", "600", "--clients", str(config["clients"]), "--data-size", str(config["data_size"]),
             "--pipeline", str(config["pipeline"]), "--requests", str(config["requests"]),
             "--tests", ",".join(TESTS), "--output", str(out)]
    began = time.perf_counter()
    subprocess.run(words, capture_output=True, text=True, timeout=600, check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=str(ROOT))
    wall = time.perf_counter() - began
    doc = json.loads(Path(out).read_text())
    assert doc["run"]["partial"] is False
    return doc["domain"]["tests"], wall, doc["throughput"]["requests_per_s"]


def figures(rows):
    out = {"overall_rps": overall_rate(rows)[2]}
    for test in TESTS:
        out[test + "_rps"] = rows[test]["requests_per_s"]
        out[test + "_p50_ms"] = rows[test]["latency_ms"]["p50"]
        out[test + "_p99_ms"] = rows[test]["latency_ms"]["p99"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--json", default=None)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args(argv)
    for program in ("redis-server", "redis-cli", "redis-benchmark"):
        if not shutil.which(program):
            raise SystemExit("%s is not installed (scripts/install-test-deps)" % program)
    version = subprocess.run(["redis-benchmark", "--version"], capture_output=True, text=True).stdout.strip()
    machine = "%s, %d CPUs, %s, Python %s, %s" % (
        platform.processor() or platform.machine(), os.cpu_count(), platform.platform(), platform.python_version(), version)
    print("machine: %s" % machine)
    report = {"machine": machine, "repetitions": args.repetitions, "configs": []}
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        server, port = start_server(tmp)
        try:
            # warm-up: both sides once, not recorded
            for config in CONFIGS:
                standalone(port, dict(config, requests=min(config["requests"], 50000)))
            for config in CONFIGS:
                sides = {"standalone": [], "orch": []}
                walls = {"standalone": [], "orch": []}
                for rep in range(args.repetitions):
                    order = ("standalone", "orch") if rep % 2 == 0 else ("orch", "standalone")
                    for side in order:
                        if side == "standalone":
                            rows, wall = standalone(port, config)
                        else:
                            rows, wall, stated = orch_client(port, config, Path(tmp) / "r.json")
                            assert abs(stated - overall_rate(rows)[2]) < 1e-6 * stated
                        sides[side].append(figures(rows))
                        walls[side].append(wall)
                summary = {"config": config, "runs": sides, "wall_s": walls, "median": {}}
                print("\nclients=%(clients)d data_size=%(data_size)d pipeline=%(pipeline)d requests=%(requests)d per test" % config)
                print("%-14s %14s %14s %9s   %s" % ("figure", "standalone", "orch", "orch/std", "spread std | orch"))
                for key in sides["standalone"][0]:
                    a = [r[key] for r in sides["standalone"]]
                    b = [r[key] for r in sides["orch"]]
                    ma, mb = statistics.median(a), statistics.median(b)
                    summary["median"][key] = {"standalone": ma, "orch": mb, "ratio": mb / ma if ma else None}
                    print("%-14s %14.3f %14.3f %9.3f   %.3f..%.3f | %.3f..%.3f" % (key, ma, mb, mb / ma, min(a), max(a), min(b), max(b)))
                # each repetition's pair ran back to back: its ratio cancels slow drifts of a shared machine
                paired = [o["overall_rps"] / a["overall_rps"] for a, o in zip(sides["standalone"], sides["orch"])]
                summary["paired_ratios"] = paired
                print("overall requests/s, orch/standalone per pair: %s" % " ".join("%.3f" % r for r in paired))
                print("ratio of medians %.3f; median of paired ratios %.3f"
                      % (summary["median"]["overall_rps"]["ratio"], statistics.median(paired)))
                ratio = statistics.median(paired)
                print("wall s (median): standalone %.2f, orch %.2f (process start, version check, a connection per test)"
                      % (statistics.median(walls["standalone"]), statistics.median(walls["orch"])))
                within = abs(ratio - 1) <= TARGET
                print("overall requests/s: orch / standalone = %.3f: %s" % (ratio, "within 5 %" if within else "OUTSIDE 5 %"))
                if not within:
                    missed.append("pipeline %d: ratio %.3f" % (config["pipeline"], ratio))
                report["configs"].append(summary)
        finally:
            server.terminate()
            server.wait(timeout=10)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    for line in missed:
        print("TARGET MISSED: %s" % line, file=sys.stderr)
    return 1 if missed and not args.no_check else 0


if __name__ == "__main__":
    sys.exit(main())
