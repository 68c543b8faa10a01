"""redis_benchmark: Redis load with ``redis-benchmark``, mapped onto ``orch.result/1``.

``python3 -m orch.clients.redis_benchmark --host H --port P --duration D [--clients C
--data-size B --pipeline P --requests N --tests set,get --key-size K --keyspace R
--threads T --test-persistence] --output PATH``

redis-benchmark (the field's standard, ``src/redis-benchmark.c``) does the measuring;
orch runs it once per test (``-t <test> --csv``), so that a run stopped part-way keeps
every test that finished: the tests ``redis-benchmark -t <the list>`` would run, in its
order and each once (``orch.clients.redis_tool``); a name it does not know is a usage
error here, where redis-benchmark would skip it. With ``--key-size`` each keyed test runs
as its command written out (redis-benchmark's command mode) with keys of that size. The
CSV is mapped onto the results document:

- ``domain.tests[<test>]``: redis-benchmark's own figures for that test: requests/s and
  latency avg/min/p50/p95/p99/max in ms, from its HdrHistogram (7.x; older versions
  print requests/s only). Latency is redis-benchmark's: from writing a batch of
  ``pipeline`` commands to the first read event, recorded for each reply.
  Percentiles are never merged or averaged across tests.
- ``throughput.requests_per_s``: sum of completed requests / sum of the tests' times
  (each test's time = its requests / its requests/s, redis-benchmark's own clock).

redis-benchmark has no time option: ``-n`` is ``--requests`` (100000, its default,
when not given), and a test still running when ``--duration`` is used up is stopped
(SIGTERM): the document is then partial, the exit status 0. A password comes from
``REDISCLI_AUTH`` (the kind exports it from the recipe's ``password``) and is handed
to redis-benchmark with ``-a``; it never appears in the document.
Exit status: 0 done, 1 the server refused (connection, auth, errors), 2 usage, 143 stopped.
"""
import argparse
import os
import re
import socket
import sys
import time

from orch.clients.tool import run_tool, split_wrap, stop_on_signals, tool_missing, tool_version
from orch.clients.node import started_now, this_job, write_document
from orch.clients.redis_tool import (DEFAULT_REQUESTS, NAMES, PROGRAM, REDACTED, invocations, key_size_problems,
                                     overall_rate, parse_csv, selected_tests, unknown)
from orch.results import new_document, now_iso

__all__ = ("main", "parse_csv", "invocations", "overall_rate")

# redis-benchmark loops for ever on a refused connection: these lines on stderr end the test
FATAL_STDERR = re.compile(r"Could not connect to Redis|replied with error|Error from server|NOAUTH|WRONGPASS")


class Stop(Exception):
    """SIGTERM or SIGINT arrived."""


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python3 -m orch.clients.redis_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=float, default=60.0, help="bound on the whole run, seconds")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--data-size", type=int, default=3)
    parser.add_argument("--pipeline", type=int, default=1)
    parser.add_argument("--requests", type=int, default=None, help="requests per test (-n)")
    parser.add_argument("--tests", default="set,get", help="redis-benchmark's -t list: run in its order, each once")
    parser.add_argument("--key-size", type=int, default=None, help="keys of this many bytes (the tests written out)")
    parser.add_argument("--keyspace", type=int, default=None, help="-r: random keys from this many")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--test-persistence", action="store_true", help="after the tests: BGSAVE and time it")
    parser.add_argument("--output", required=True)
    argv, wrap = split_wrap(argv)
    args = parser.parse_args(argv)
    args.wrap = wrap
    names = [t.strip() for t in args.tests.split(",") if t.strip()]
    if not names:
        parser.error("--tests names no test")
    if unknown(names):
        parser.error("--tests: not redis-benchmark tests: %s (known: %s)" % (", ".join(unknown(names)), ", ".join(NAMES)))
    args.tests = list(selected_tests(names))
    for problem in key_size_problems(args.key_size, args.keyspace, (args.data_size,)):
        parser.error("--key-size: " + problem)
    return args


# ------------------------------------------------------------ a few RESP words


def resp_command(*words):
    out = b"*%d\r\n" % len(words)
    for w in words:
        data = w.encode() if isinstance(w, str) else w
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


def _read_reply(stream):
    line = stream.readline()
    if not line:
        raise ConnectionError("the server closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        return [_read_reply(stream) for _ in range(max(int(rest), 0))]
    raise RuntimeError("unexpected reply %r" % line)


class Resp:
    """A minimal Redis connection: the preflight check and --test-persistence."""

    def __init__(self, host, port, password=None, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.stream = self.sock.makefile("rb")
        if password:
            self.call("AUTH", password)

    def call(self, *words):
        self.sock.sendall(resp_command(*words))
        return _read_reply(self.stream)

    def close(self):
        try:
            self.stream.close()
            self.sock.close()
        except OSError:
            pass


def preflight(host, port, password):
    """None when PING answers PONG, else a clear message (redis-benchmark itself would spin on a refused connection)."""
    try:
        conn = Resp(host, port, password)
    except RuntimeError as exc:
        return "redis at %s:%d refused the password: %s" % (host, port, exc)
    except OSError as exc:
        return "cannot connect to redis at %s:%d: %s" % (host, port, exc.strerror or exc)
    try:
        answer = conn.call("PING")
    except RuntimeError as exc:
        hint = "" if password else " (a password is needed: set the recipe's password / REDISCLI_AUTH)"
        return "redis at %s:%d answered PING with an error: %s%s" % (host, port, exc, hint)
    except OSError as exc:
        return "redis at %s:%d: %s" % (host, port, exc)
    finally:
        conn.close()
    if answer != "PONG":
        return "redis at %s:%d answered PING with %r" % (host, port, answer)
    return None


def info_fields(conn, section):
    text = conn.call("INFO", section) or ""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def persistence_check(host, port, password, bound):
    """BGSAVE after the tests: how long the snapshot took, and the persistence settings in force."""
    conn = Resp(host, port, password, timeout=10.0)
    try:
        before = info_fields(conn, "persistence")
        began = time.monotonic()
        try:
            conn.call("BGSAVE")
        except RuntimeError as exc:  # one already running: wait for it, as for ours
            if "already" not in str(exc):
                raise
        time.sleep(0.05)
        while time.monotonic() - began < bound:
            now = info_fields(conn, "persistence")
            if now.get("rdb_bgsave_in_progress") == "0" and now.get("rdb_last_save_time") != before.get("rdb_last_save_time"):
                break
            time.sleep(0.05)
        seconds = time.monotonic() - began
        return {
            "bgsave_s": seconds,
            "bgsave_status": now.get("rdb_last_bgsave_status"),
            "aof_enabled": now.get("aof_enabled") == "1",
            "rdb_changes_before": int(before.get("rdb_changes_since_last_save", 0) or 0),
            "definition": "BGSAVE sent .. rdb_last_save_time changed, polled every 50 ms",
        }
    finally:
        conn.close()


# ------------------------------------------------------------ running the tool


def run_one(words, deadline, stop_flag):
    """Run redis-benchmark once; returns (returncode, stdout, stderr, why_stopped or None)."""
    return run_tool(words, deadline, stop_flag, fatal=lambda stderr: FATAL_STDERR.search(stderr) is not None)


def error_message(stderr, returncode):
    lines = [l.strip() for l in stderr.splitlines() if l.strip() and not l.startswith("Warning: Using a password")]
    return " ".join(lines[-3:]) or "redis-benchmark exited with status %s" % returncode


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    password = os.environ.get("REDISCLI_AUTH") or None
    stop_flag = stop_on_signals()

    requests = args.requests or DEFAULT_REQUESTS
    parameters = {
        "clients": args.clients, "data_size": args.data_size, "pipeline": args.pipeline, "requests": requests,
        "tests": args.tests, "key_size": args.key_size, "keyspace": args.keyspace, "threads": args.threads,
        "test_persistence": args.test_persistence, "duration": args.duration, "password_set": bool(password),
    }
    shown_argv = [sys.executable, "-m", "orch.clients.redis_benchmark"] + list(sys.argv[1:] if argv is None else argv)
    doc = new_document(
        "redis_benchmark", parameters,
        {"kind": "redis", "url": "redis://%s:%d" % (args.host, args.port), "host": args.host, "port": args.port},
        job=this_job(), started_at=started_now(), tool=PROGRAM, tool_version=tool_version(PROGRAM, args.wrap), command=shown_argv,
    )
    doc["workload"] = {"loop": "closed", "concurrency": args.clients, "pipeline": args.pipeline, "data_size": args.data_size}
    doc["fidelity"] = {"degraded": False, "reasons": []}
    domain = doc["domain"]
    domain.update({
        "tests": {},
        "pipeline": args.pipeline,
        "clients": args.clients,
        "data_size": args.data_size,
        "keyspace": args.keyspace,
        "key_size": args.key_size,
        "key_size_note": None if args.key_size is None else
        "keys of key_size bytes: each keyed test run as its command written out (redis-benchmark's command mode)",
        "latency_definition": "redis-benchmark's own: write of a batch of `pipeline` commands .. first read event, "
                              "recorded for each reply; ms",
        "percentiles": "per test, redis-benchmark's own HdrHistogram figures; no cross-test merge, never averaged",
    })
    counts = doc["counts"]
    status = 0
    why_stopped = None
    started = time.time()
    doc["window"]["start_epoch"] = started
    deadline = time.monotonic() + args.duration

    if tool_missing(PROGRAM, args.wrap):
        message = "%s is not installed (on PATH)" % PROGRAM
        counts["errors"][message] = 1
        status = 1
    elif args.wrap and doc["environment"]["tool_version"] is None:
        # the older tool's client recipes name a Python image (its script ran there): no redis-benchmark in it
        message = ("%s does not run in the client's image (%s): give the client an image that has it "
                   "(container.docker_source, e.g. docker://redis:7-alpine)" % (PROGRAM, " ".join(args.wrap)))
        counts["errors"][message] = 1
        status = 1
    else:
        problem = preflight(args.host, args.port, password)
        if problem:
            counts["errors"][problem] = 1
            counts["failed"] = requests * len(args.tests)
            status = 1
    if status:
        print("redis_benchmark: %s" % next(iter(counts["errors"])), file=sys.stderr)

    completed = {}
    runs = [(test, run) for test in (args.tests if not status else ()) for run in invocations(args, test, password)]
    for test, (row_name, words, shown) in runs:
        if stop_flag:
            why_stopped = "signal"
            break
        began = time.time()
        code, out, err, why = run_one(words, deadline, stop_flag)
        if stop_flag and why is None and code != 0:
            why = "signal"  # the signal reached redis-benchmark too (the job's process group)
        if password:
            out, err = out.replace(password, REDACTED), err.replace(password, REDACTED)
        doc["raw"]["native_output"].append(
            {"command": shown, "exit_code": code, "stdout": out, "stderr": err,
             "started_epoch": began, "ended_epoch": time.time(), "stopped": why})
        rows = parse_csv(out)
        if row_name is not None:  # a command written out: its one row is named after the test
            rows = {row_name: row for row in list(rows.values())[:1]}
        counts["sent"] += requests * max(1, len(rows))
        if why in ("signal", "duration"):
            domain["tests"][row_name or test] = {"completed": False, "stopped": why, "stopped_after_s": time.time() - began}
            why_stopped = why
            break
        if why == "error" or code != 0 or not rows:
            message = error_message(err, code)
            counts["errors"][message] = counts["errors"].get(message, 0) + 1
            counts["failed"] += requests
            print("redis_benchmark: test %s failed: %s" % (test, message), file=sys.stderr)
            status = 1
            break
        for name, row in rows.items():
            row.update({"requests": requests, "completed": True, "tool_time_s": requests / row["requests_per_s"] if row["requests_per_s"] else None})
            domain["tests"][name] = row
            completed[name] = row
            counts["completed"] += requests

    if args.test_persistence and not status and not why_stopped:
        try:
            domain["persistence"] = persistence_check(args.host, args.port, password, max(5.0, deadline - time.monotonic()))
        except (OSError, RuntimeError) as exc:
            domain["persistence"] = {"error": str(exc)}

    ended = time.time()
    total, seconds, rate = overall_rate(completed)
    doc["throughput"]["requests_per_s"] = rate
    doc["window"].update({
        "end_epoch": ended, "duration_s": seconds or None,
        "definition": "sum over completed tests of redis-benchmark's own time (requests / its requests/s); "
                      "wall clock of the whole run in wall_s",
        "wall_s": ended - started,
    })
    if why_stopped == "duration":
        doc["fidelity"]["reasons"].append("--duration %g s used up before every test finished (-n %d)" % (args.duration, requests))
    doc["run"]["ended_at"] = now_iso(ended)
    doc["run"]["partial"] = bool(why_stopped) or bool(status)
    write_document(args.output, doc)
    if why_stopped == "signal":
        return 143
    return status


if __name__ == "__main__":
    sys.exit(main())
