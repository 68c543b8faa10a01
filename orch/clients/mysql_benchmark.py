"""mysql_benchmark: MySQL/MariaDB OLTP load with ``sysbench``, mapped onto ``orch.result/1``.

``python3 -m orch.clients.mysql_benchmark --host H --port P --duration D [--threads N
--transactions-per-client T --tables N --table-size N --workload read_write|read_only|
point_select|write_only --user U --database DB --password-env VAR] --output PATH``

User, database and password default to ``MYSQL_USER``, ``MYSQL_DATABASE`` and
``MYSQL_PASSWORD`` from the environment (the seed's recipes set them). sysbench
(``oltp_<workload>``, ``--db-driver=mysql``) runs ``prepare``, ``run`` (``--time=duration
--report-interval=1 --histogram``; ``--events = threads x transactions_per_client``
when that is given, whichever bound comes first) and ``cleanup`` (also after a failure
or a signal, best effort). Its ``run`` output is kept verbatim and mapped:

- ``throughput.transactions_per_s``/``queries_per_s``: sysbench's ``transactions: N (X per sec.)``
  and ``queries: N (X per sec.)`` (completed / its total time).
- ``latency.transaction_ms``: min, mean, max and p95 are sysbench's own figures
  (``Latency (ms)``; p95 = its ``95th percentile`` line); p50, p90, p99, p999 come from
  its ``--histogram`` buckets and are bucket-midpoint values (buckets ~2 % wide,
  ``sb_histogram.c``), interpolated linearly between them.
- ``counts``: completed transactions, ignored errors, reconnects.

A run stopped by SIGTERM prints no summary: the partial document then holds the
per-second report lines (``domain.intervals``) and the transactions they account for.
The password reaches sysbench on its command line only; the recorded commands show
``--mysql-password=<redacted>`` and every recorded output is scrubbed of it.
Exit status: 0 done, 1 sysbench or the server failed, 2 usage, 143 stopped.
"""
import argparse
import os
import re
import sys
import time

from orch.clients.tool import run_tool, split_wrap, stop_on_signals, tool_missing, tool_version
from orch.clients.node import started_now, this_job, write_document
from orch.results import new_document, now_iso, summary

__all__ = ("main", "parse_run", "parse_intervals", "histogram_summary", "build_command")

PROGRAM = "sysbench"
WORKLOADS = ("read_write", "read_only", "point_select", "write_only")
REDACTED = "<redacted>"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python3 -m orch.clients.mysql_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=float, default=60.0, help="sysbench --time, seconds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--transactions-per-client", type=int, default=None)
    parser.add_argument("--tables", type=int, default=1)
    parser.add_argument("--table-size", type=int, default=10000)
    parser.add_argument("--workload", choices=WORKLOADS, default="read_write")
    parser.add_argument("--user", default=None, help="default: $MYSQL_USER")
    parser.add_argument("--database", default=None, help="default: $MYSQL_DATABASE")
    parser.add_argument("--password-env", default="MYSQL_PASSWORD", help="the variable holding the password")
    parser.add_argument("--output", required=True)
    argv, wrap = split_wrap(argv)
    args = parser.parse_args(argv)
    args.wrap = wrap
    args.user = args.user or os.environ.get("MYSQL_USER") or "root"
    args.database = args.database or os.environ.get("MYSQL_DATABASE") or "sbtest"
    args.password = os.environ.get(args.password_env, "")
    return args


def build_command(args, phase):
    """sysbench's words for one phase (prepare, run, cleanup), and the same with the password redacted."""
    words = list(args.wrap) + [
        PROGRAM, "oltp_" + args.workload, "--db-driver=mysql",
        "--mysql-host=%s" % args.host, "--mysql-port=%d" % args.port,
        "--mysql-user=%s" % args.user, "--mysql-db=%s" % args.database,
        "--tables=%d" % args.tables, "--table-size=%d" % args.table_size, "--threads=%d" % args.threads,
    ]
    if phase == "run":
        seconds = max(1, int(round(args.duration)))
        events = args.threads * args.transactions_per_client if args.transactions_per_client else 0
        words += ["--time=%d" % seconds, "--events=%d" % events, "--report-interval=1", "--histogram"]
    shown = words + ["--mysql-password=%s" % REDACTED, phase]
    return words + ["--mysql-password=%s" % args.password, phase], shown


# ------------------------------------------------------------ parsing sysbench's output

_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def _find(pattern, text, cast=float):
    found = re.search(pattern, text, re.M)
    return cast(found.group(1)) if found else None


def parse_histogram(text):
    """[(bucket value ms, count)] from the ``Latency histogram`` block ([] when absent)."""
    start = text.find("Latency histogram")
    if start < 0:
        return []
    buckets = []
    for line in text[start:].splitlines()[2:]:
        found = re.match(r"\s*" + _NUM + r"\s*\|[*\s]*\s(\d+)\s*$", line)
        if not found:
            break
        buckets.append((float(found.group(1)), int(found.group(2))))
    return buckets


def histogram_summary(buckets):
    """``orch.results.summary`` of the histogram, each event at its bucket's value (the midpoint).

    >>> histogram_summary([(1.0, 1), (2.0, 2), (3.0, 1)])["p50"]
    2.0
    """
    if not buckets:
        return None
    return summary(value for value, count in buckets for _ in range(count))


def parse_intervals(text):
    """The ``--report-interval`` lines: ``[{t, threads, tps, qps, read, write, other, lat_ms, lat_pct, err_s, reconn_s}]``."""
    pattern = re.compile(
        r"^\[\s*(\d+)s \] thds: (\d+) tps: " + _NUM + r" qps: " + _NUM + r" \(r/w/o: " + _NUM + "/" + _NUM + "/" + _NUM
        + r"\) lat \(ms,(\d+)%\): " + _NUM + r" err/s: " + _NUM + r" reconn/s: " + _NUM, re.M)
    rows = []
    for m in pattern.finditer(text):
        rows.append({
            "t": int(m.group(1)), "threads": int(m.group(2)), "tps": float(m.group(3)), "qps": float(m.group(4)),
            "read_qps": float(m.group(5)), "write_qps": float(m.group(6)), "other_qps": float(m.group(7)),
            "lat_pct": int(m.group(8)), "lat_ms": float(m.group(9)), "err_s": float(m.group(10)), "reconn_s": float(m.group(11)),
        })
    return rows


def parse_run(text):
    """sysbench's final report as a dict (values None where the report lacks them)."""
    percentile = re.search(r"^\s*(\d+)th percentile:\s*" + _NUM, text, re.M)
    return {
        "queries_read": _find(r"^\s*read:\s*(\d+)", text, int),
        "queries_write": _find(r"^\s*write:\s*(\d+)", text, int),
        "queries_other": _find(r"^\s*other:\s*(\d+)", text, int),
        "queries_total": _find(r"^\s*total:\s*(\d+)", text, int),
        "transactions": _find(r"^\s*transactions:\s*(\d+)", text, int),
        "transactions_per_s": _find(r"^\s*transactions:\s*\d+\s*\(" + _NUM + " per sec", text),
        "queries": _find(r"^\s*queries:\s*(\d+)", text, int),
        "queries_per_s": _find(r"^\s*queries:\s*\d+\s*\(" + _NUM + " per sec", text),
        "ignored_errors": _find(r"^\s*ignored errors:\s*(\d+)", text, int),
        "reconnects": _find(r"^\s*reconnects:\s*(\d+)", text, int),
        "total_time_s": _find(r"^\s*total time:\s*" + _NUM + "s", text),
        "events": _find(r"^\s*total number of events:\s*(\d+)", text, int),
        "latency_min_ms": _find(r"^\s*min:\s*" + _NUM, text),
        "latency_avg_ms": _find(r"^\s*avg:\s*" + _NUM, text),
        "latency_max_ms": _find(r"^\s*max:\s*" + _NUM, text),
        "latency_percentile": int(percentile.group(1)) if percentile else None,
        "latency_percentile_ms": float(percentile.group(2)) if percentile else None,
        "latency_sum_ms": _find(r"^\s*sum:\s*" + _NUM, text),
    }


# ------------------------------------------------------------ running sysbench


def run_phase(words, stop_flag, bound):
    """Run one sysbench phase; (returncode, stdout, stderr, why_stopped or None)."""
    # sysbench prints no report when stopped, whatever the signal: run_tool's TERM, then KILL, is all there is
    return run_tool(words, time.monotonic() + bound, stop_flag, expired="timeout")


def failed(code, out, err):
    """sysbench 1.0 can exit 0 after a FATAL error in a parallel prepare: both count."""
    return code != 0 or re.search(r"^FATAL", out + "\n" + err, re.M) is not None


def failure_message(out, err, code):
    lines = [l.strip() for l in (err + "\n" + out).splitlines() if l.strip().startswith(("FATAL", "ALERT", "error"))]
    lines = [l for l in lines if "call_command" not in l and "function failed" not in l] or lines
    return " ".join(lines[:2]) or "sysbench exited with status %s" % code


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    stop_flag = stop_on_signals()

    def scrub(text):
        return text.replace(args.password, REDACTED) if args.password else text

    events = args.threads * args.transactions_per_client if args.transactions_per_client else None
    parameters = {
        "threads": args.threads, "transactions_per_client": args.transactions_per_client, "events": events,
        "tables": args.tables, "table_size": args.table_size, "workload": args.workload,
        "user": args.user, "database": args.database, "duration": args.duration,
    }
    doc = new_document(
        "mysql_benchmark", parameters,
        {"kind": "mysql", "url": "mysql://%s:%d/%s" % (args.host, args.port, args.database), "host": args.host, "port": args.port},
        job=this_job(), started_at=started_now(), tool=PROGRAM, tool_version=tool_version(PROGRAM, args.wrap),
        command=[sys.executable, "-m", "orch.clients.mysql_benchmark"] + [scrub(a) for a in argv],
    )
    doc["workload"] = {"loop": "closed", "concurrency": args.threads, "script": "oltp_" + args.workload}
    doc["fidelity"] = {"degraded": False, "reasons": []}
    counts, raw, domain = doc["counts"], doc["raw"], doc["domain"]
    domain["phases"] = {}
    status, stopped = 0, False
    started = time.time()
    doc["window"]["start_epoch"] = started

    def error(message):
        counts["errors"][message] = counts["errors"].get(message, 0) + 1
        print("mysql_benchmark: %s" % message, file=sys.stderr)

    def phase(name, bound):
        words, shown = build_command(args, name.replace("_before", ""))
        began = time.time()
        code, out, err, why = run_phase(words, stop_flag if name != "cleanup" else [], bound)
        out, err = scrub(out), scrub(err)
        raw["native_output"].append({"phase": name, "command": shown, "exit_code": code, "stdout": out, "stderr": err,
                                     "started_epoch": began, "ended_epoch": time.time(), "stopped": why})
        domain["phases"][name] = {"exit_code": code, "seconds": time.time() - began, "stopped": why}
        return code, out, err, why

    if tool_missing(PROGRAM, args.wrap):
        error("%s is not installed (on PATH)" % PROGRAM)
        status = 1
    else:
        # tables left by an earlier run stopped hard would fail prepare: drop them first (DROP TABLE IF EXISTS)
        code, out, err, why = phase("cleanup_before", bound=120.0)
        if failed(code, out, err) and why != "signal":
            error("cannot reach or clean the database: " + failure_message(out, err, code))
            status = 1
            why = "error"
        else:
            # prepare may leave tables behind when it fails part-way: cleanup runs in every case from here
            code, out, err, why = phase("prepare", bound=max(300.0, args.duration * 5))
        if why == "error":
            pass
        elif why == "signal":
            stopped = True
        elif failed(code, out, err):
            error("prepare failed: " + failure_message(out, err, code))
            status = 1
        else:
            run_bound = args.duration + 60.0
            code, out, err, why = phase("run", bound=run_bound)
            fill_from_run(doc, out)
            if why == "signal":
                stopped = True
            elif why == "timeout":
                error("sysbench run did not end within %d s of --time" % (run_bound - args.duration))
                status = 1
            elif failed(code, out, err) or doc["counts"]["completed"] is None:
                error("run failed: " + failure_message(out, err, code))
                status = 1
        code, out, err, why = phase("cleanup", bound=120.0)
        if failed(code, out, err):
            domain["cleanup_error"] = failure_message(out, err, code)
    if counts["completed"] is None:
        counts["completed"] = 0
    if status and not counts["failed"]:
        counts["failed"] = 1  # the run itself: sysbench counts no failed transactions of its own
    ended = time.time()
    doc["run"]["ended_at"] = now_iso(ended)
    doc["window"]["end_epoch"] = ended
    doc["run"]["partial"] = stopped or bool(status)
    write_document(args.output, doc)
    return 143 if stopped else status


def fill_from_run(doc, out):
    """Map sysbench's run output onto the document (a report cut short leaves the interval lines only)."""
    report = parse_run(out)
    intervals = parse_intervals(out)
    buckets = parse_histogram(out)
    domain, counts = doc["domain"], doc["counts"]
    domain["sysbench"] = report
    domain["intervals"] = intervals
    domain["histogram"] = [[value, count] for value, count in buckets]
    if report["transactions"] is None:
        # no final report: what the per-second lines account for (tps x 1 s each)
        counts["completed"] = int(round(sum(row["tps"] for row in intervals))) if intervals else None
        if intervals:
            seconds = intervals[-1]["t"]
            doc["throughput"]["transactions_per_s"] = counts["completed"] / seconds if seconds else None
            doc["throughput"]["queries_per_s"] = sum(row["qps"] for row in intervals) / seconds if seconds else None
            doc["window"]["duration_s"] = seconds
            doc["window"]["definition"] = "sysbench's per-second reports up to the stop (no final report)"
            counts["errors"]["ignored errors (from per-second reports)"] = int(round(sum(r["err_s"] for r in intervals)))
        return
    counts["completed"] = report["transactions"]
    counts["sent"] = report["transactions"]
    if report["ignored_errors"]:
        counts["errors"]["ignored errors (sysbench: rolled back and retried)"] = report["ignored_errors"]
    if report["reconnects"]:
        counts["errors"]["reconnects"] = report["reconnects"]
    doc["throughput"]["transactions_per_s"] = report["transactions_per_s"]
    doc["throughput"]["queries_per_s"] = report["queries_per_s"]
    doc["throughput"]["requests_per_s"] = report["transactions_per_s"]
    doc["window"]["duration_s"] = report["total_time_s"]
    doc["window"]["definition"] = "sysbench's total time (threads start .. last event)"
    latency = histogram_summary(buckets) or {"n": report["events"]}
    latency.update({
        "n": report["events"],
        "mean": report["latency_avg_ms"],
        "min": report["latency_min_ms"],
        "max": report["latency_max_ms"],
        "method": "sysbench: min/mean/max exact; p%s from its percentile line; other percentiles from --histogram "
                  "bucket midpoints (~2%% buckets), linear between them" % report["latency_percentile"],
    })
    latency.pop("std", None)  # not meaningful from bucket midpoints
    if report["latency_percentile"] is not None:
        latency["p%d" % report["latency_percentile"]] = report["latency_percentile_ms"]
    doc["latency"]["transaction_ms"] = latency


if __name__ == "__main__":
    sys.exit(main())
