"""pgbench: PostgreSQL load with PostgreSQL's own ``pgbench``, mapped onto ``orch.result/1``.

``python3 -m orch.clients.pgbench --host H --port P --duration D [--clients C --threads J
--transactions T --scale S --builtin tpcb-like|simple-update|select-only --protocol
simple|extended|prepared --rate R --skip-init --user U --database DB] --output PATH``

pgbench does the measuring. orch runs ``pgbench -i -s S`` (unless ``--skip-init``), then the
benchmark: ``-T duration`` (or ``-t transactions`` per client, ``--duration`` then bounds the run),
``-P 1`` and ``--log``, pgbench's per-transaction log, one line per transaction. Mapped:

- ``latency.transaction_ms``: from every logged transaction (``orch.results.summary``, linear
  percentiles over the raw samples; pgbench's microseconds). pgbench's latency runs from the
  transaction's start to its end, in one client connection (a closed loop). With ``--rate`` (an
  open loop, Poisson arrivals) it runs from the *scheduled* start: the schedule lag is included,
  and ``latency.schedule_lag_ms`` holds the lag alone.
- ``throughput.transactions_per_s``: pgbench's own ``tps`` (completed / run time, without the
  initial connection time); ``domain.log_transactions_per_s``: logged transactions / the log's
  window (first start .. last end).
- ``domain.pgbench``: pgbench's final report as it prints it; ``domain.intervals``: its
  per-second progress lines; ``domain.phases.init.timings``: the initialisation's step times.

A run stopped by SIGTERM prints no report: the partial document holds what the log and the
progress lines account for (pgbench buffers its log, so the last few transactions may be
missing). A password comes from ``PGPASSWORD`` (the kind exports it from the recipe's
``password``) and reaches pgbench through a 0600 password file (``PGPASSFILE``), never its
command line or the document. The log is kept gzipped beside the document (``raw.requests``).
Exit status: 0 done, 1 pgbench or the server failed, 2 usage, 143 stopped.
"""
import argparse
import gzip
import os
import re
import shutil
import sys
import tempfile
import time

from orch.clients.node import started_now, this_job, write_document
from orch.clients.tool import run_tool, split_wrap, stop_on_signals, tool_missing, tool_version
from orch.results import new_document, now_iso, summary

__all__ = ("main", "build_command", "parse_report", "parse_progress", "parse_init", "read_log", "pgpass_line")

PROGRAM = "pgbench"
BUILTINS = ("tpcb-like", "simple-update", "select-only")
PROTOCOLS = ("simple", "extended", "prepared")
_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python3 -m orch.clients.pgbench", description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=float, default=60.0, help="pgbench -T, seconds (with --transactions: a bound)")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--transactions", type=int, default=None, help="pgbench -t: transactions per client")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--builtin", choices=BUILTINS, default="tpcb-like")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="simple")
    parser.add_argument("--rate", type=float, default=None, help="pgbench -R: transactions/s of all clients together")
    parser.add_argument("--skip-init", action="store_true", help="use the tables an earlier pgbench -i made")
    parser.add_argument("--user", default=None, help="default: $PGUSER, else libpq's (this OS user)")
    parser.add_argument("--database", default=None, help="default: $PGDATABASE, else the user's name")
    parser.add_argument("--output", required=True)
    argv, wrap = split_wrap(argv)
    args = parser.parse_args(argv)
    args.wrap = wrap
    args.user = args.user or os.environ.get("PGUSER") or None
    args.database = args.database or os.environ.get("PGDATABASE") or None
    return args


def build_command(args, phase, log_prefix=None):
    """pgbench's words for ``init`` or ``run``: no secret among them (the password goes through PGPASSFILE)."""
    words = list(args.wrap) + [PROGRAM, "-h", args.host, "-p", str(args.port)]
    if args.user:
        words += ["-U", args.user]
    if phase == "init":
        words += ["-i", "-q", "-s", str(args.scale)]
    else:
        words += ["-c", str(args.clients), "-j", str(args.threads), "-b", args.builtin, "-M", args.protocol, "-P", "1"]
        words += ["-t", str(args.transactions)] if args.transactions else ["-T", str(max(1, int(round(args.duration))))]
        if args.rate:
            words += ["-R", "%g" % args.rate]
        words += ["--log", "--log-prefix=%s" % log_prefix]
    if args.database:
        words.append(args.database)
    return words


def pgpass_line(password):
    """A password file line that matches any host, port, database and user.

    >>> pgpass_line("a:b\\\\c")
    '*:*:*:*:a\\\\:b\\\\\\\\c\\n'
    """
    return "*:*:*:*:%s\n" % password.replace("\\", "\\\\").replace(":", "\\:")


# ------------------------------------------------------------ pgbench's output


def _find(pattern, text, cast=float):
    found = re.search(pattern, text, re.M)
    return cast(found.group(1)) if found else None


def parse_report(text):
    """pgbench's final report as a dict (None where it lacks a line: a run cut short has none)."""
    lag = re.search(r"^rate limit schedule lag: avg " + _NUM + r" \(max " + _NUM + r"\) ms", text, re.M)
    version = re.search(r"^pgbench \(([^,()]+)(?: \([^)]*\))?(?:, server ([^ )]+))?", text, re.M)
    return {
        "transaction_type": _find(r"^transaction type: (.+)$", text, str),
        "scaling_factor": _find(r"^scaling factor: (\d+)", text, int),
        "query_mode": _find(r"^query mode: (\S+)", text, str),
        "clients": _find(r"^number of clients: (\d+)", text, int),
        "threads": _find(r"^number of threads: (\d+)", text, int),
        "transactions": _find(r"^number of transactions actually processed: (\d+)", text, int),
        "failed": _find(r"^number of failed transactions: (\d+)", text, int),
        "latency_average_ms": _find(r"^latency average = " + _NUM + " ms", text),
        "latency_stddev_ms": _find(r"^latency stddev = " + _NUM + " ms", text),
        "schedule_lag_average_ms": float(lag.group(1)) if lag else None,
        "schedule_lag_max_ms": float(lag.group(2)) if lag else None,
        "initial_connection_ms": _find(r"^initial connection time = " + _NUM + " ms", text),
        "tps": _find(r"^tps = " + _NUM, text),
        "client_version": version.group(1).strip() if version else None,
        "server_version": (version.group(2) or version.group(1).strip()) if version else None,
    }


def parse_progress(text):
    """The ``-P 1`` lines: ``[{t, tps, lat_ms, stddev_ms, failed, lag_ms}]`` (failed and lag None when not printed)."""
    pattern = re.compile(r"^progress: " + _NUM + r" s, " + _NUM + r" tps, lat " + _NUM + r" ms stddev " + _NUM
                         + r"(?:, (\d+) failed)?(?:, lag " + _NUM + r" ms)?", re.M)
    return [{
        "t": float(m.group(1)), "tps": float(m.group(2)), "lat_ms": float(m.group(3)), "stddev_ms": float(m.group(4)),
        "failed": int(m.group(5)) if m.group(5) else None, "lag_ms": float(m.group(6)) if m.group(6) else None,
    } for m in pattern.finditer(text)]


def parse_init(text):
    """``pgbench -i``'s closing line: ``{total_s, steps: {name: s}}`` (None when it did not finish).

    >>> parse_init("done in 0.22 s (drop tables 0.00 s, create tables 0.01 s, vacuum 0.05 s).")["steps"]["vacuum"]
    0.05
    """
    found = re.search(r"^done in " + _NUM + r" s \((.*)\)\.?\s*$", text, re.M)
    if not found:
        return None
    steps = {m.group(1): float(m.group(2)) for m in re.finditer(r"([a-z -]+?) " + _NUM + " s", found.group(2))}
    return {"total_s": float(found.group(1)), "steps": {name.strip(): s for name, s in steps.items()}}


def read_log(paths):
    """Every transaction of pgbench's ``--log`` files.

    Returns ``{latency_ms, lag_ms, failed, skipped, first_start, last_end}``: latencies of the
    transactions that completed, their schedule lags (``--rate``), the failed and skipped
    counts, and the window (epoch seconds: the earliest start, the latest completion).
    """
    latency, lag = [], []
    failed = skipped = 0
    first_start = last_end = None
    for path in paths:
        with open(path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 6 or not fields[4].isdigit() or not fields[5].isdigit():
                    continue  # a line cut short by a stop
                end = int(fields[4]) + int(fields[5]) / 1e6
                if fields[2] == "skipped":
                    skipped += 1
                    continue
                if not fields[2].isdigit():  # failed, serialization, deadlock
                    failed += 1
                    continue
                micros = int(fields[2])
                latency.append(micros / 1000.0)
                if len(fields) > 6 and fields[6].isdigit():
                    lag.append(int(fields[6]) / 1000.0)
                start = end - micros / 1e6
                first_start = start if first_start is None else min(first_start, start)
                last_end = end if last_end is None else max(last_end, end)
    return {"latency_ms": latency, "lag_ms": lag, "failed": failed, "skipped": skipped,
            "first_start": first_start, "last_end": last_end}


def keep_log(paths, output):
    """The log files, concatenated and gzipped beside the document: its file name (None when there is no log)."""
    if not paths:
        return None
    target = re.sub(r"\.json$", "", output) + ".pgbench-log.gz"
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, "." + os.path.basename(target) + ".tmp")
    with gzip.open(partial, "wb", compresslevel=3) as out:
        for path in paths:
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, out)
    os.replace(partial, target)
    return os.path.basename(target)


# ------------------------------------------------------------ the run


def fill(doc, args, report, progress, log):
    """Map the report, the progress lines and the log onto the document."""
    counts, domain = doc["counts"], doc["domain"]
    domain["pgbench"] = report
    domain["intervals"] = progress
    completed = len(log["latency_ms"])
    counts["completed"] = report["transactions"] if report["transactions"] is not None else completed
    counts["failed"] = max(report["failed"] or 0, log["failed"])
    counts["sent"] = counts["completed"] + counts["failed"] + log["skipped"]
    if log["skipped"]:
        counts["errors"]["skipped (behind schedule)"] = log["skipped"]
    if report["transactions"] is not None and report["transactions"] != completed:
        doc["fidelity"]["reasons"].append("the log holds %d transactions, pgbench's report %d" % (completed, report["transactions"]))
    window = log["last_end"] - log["first_start"] if completed else None
    domain["log_transactions"] = completed
    domain["log_transactions_per_s"] = completed / window if window else None
    rate = report["tps"] if report["tps"] is not None else domain["log_transactions_per_s"]
    doc["throughput"].update({"transactions_per_s": rate, "requests_per_s": rate})
    doc["window"].update({
        "start_epoch": log["first_start"], "end_epoch": log["last_end"], "duration_s": window,
        "definition": "pgbench's per-transaction log: first transaction start%s .. last completion"
                      % (" (scheduled)" if args.rate else ""),
    })
    latency = summary(log["latency_ms"])
    if latency:
        latency["method"] = "linear percentiles over every logged transaction (pgbench --log, microseconds)"
        latency["measured"] = ("scheduled start .. end (open loop: schedule lag included)" if args.rate
                               else "start .. end of each transaction on its connection (closed loop)")
        doc["latency"]["transaction_ms"] = latency
    lag = summary(log["lag_ms"])
    if lag:
        lag["method"] = "linear percentiles over every logged transaction: scheduled .. actual start"
        doc["latency"]["schedule_lag_ms"] = lag
    if args.rate:
        achieved = doc["throughput"]["transactions_per_s"]
        doc["fidelity"].update({"offered_rps": args.rate, "achieved_rps": achieved,
                                "send_lag_ms": {"p50": lag["p50"], "p99": lag["p99"]} if lag else None})
        if achieved is not None and achieved < 0.9 * args.rate:
            doc["fidelity"]["degraded"] = True
            doc["fidelity"]["reasons"].append("achieved %.1f tps of the %g offered" % (achieved, args.rate))


def error_message(out, err, code):
    lines = [line.strip() for line in (err + "\n" + out).splitlines() if "error" in line.lower() or "FATAL" in line]
    return " ".join(lines[:2]) or "pgbench exited with status %s" % code


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    stop_flag = stop_on_signals()
    password = os.environ.get("PGPASSWORD") or None
    parameters = {
        "clients": args.clients, "threads": args.threads, "transactions": args.transactions, "scale": args.scale,
        "builtin": args.builtin, "protocol": args.protocol, "rate": args.rate, "skip_init": args.skip_init,
        "user": args.user, "database": args.database, "duration": args.duration, "password_set": bool(password),
    }
    doc = new_document(
        "pgbench", parameters,
        {"kind": "postgres", "url": "postgresql://%s:%d/%s" % (args.host, args.port, args.database or ""),
         "host": args.host, "port": args.port},
        job=this_job(), started_at=started_now(), tool=PROGRAM, tool_version=tool_version(PROGRAM, args.wrap),
        command=[sys.executable, "-m", "orch.clients.pgbench"] + argv,
    )
    doc["workload"] = {"loop": "open" if args.rate else "closed", "arrival": "poisson" if args.rate else None,
                       "target_rps": args.rate, "concurrency": args.clients, "script": "builtin: " + args.builtin}
    doc["fidelity"] = {"degraded": False, "reasons": []}
    counts, domain = doc["counts"], doc["domain"]
    domain["phases"] = {}
    started = time.time()
    status, stopped = 0, False
    cut_short = False
    work = tempfile.mkdtemp(prefix="orch-pgbench-")  # 0700: the password file and the logs
    # pgbench inherits this process's environment: the password leaves it for a file only this user reads
    os.environ.pop("PGPASSWORD", None)
    if password:
        passfile = os.path.join(work, "pgpass")
        with open(os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            handle.write(pgpass_line(password))
        os.environ["PGPASSFILE"] = passfile

    def error(message):
        counts["errors"][message] = counts["errors"].get(message, 0) + 1
        print("pgbench: %s" % message, file=sys.stderr)

    def phase(name, words, bound, expired):
        began = time.time()
        code, out, err, why = run_tool(words, time.monotonic() + bound, stop_flag, expired=expired)
        if password:
            out, err = out.replace(password, "<redacted>"), err.replace(password, "<redacted>")
        doc["raw"]["native_output"].append({"phase": name, "command": words, "exit_code": code, "stdout": out, "stderr": err,
                                            "started_epoch": began, "ended_epoch": time.time(), "stopped": why})
        domain["phases"][name] = {"exit_code": code, "seconds": time.time() - began, "stopped": why}
        return code, out, err, why

    try:
        if tool_missing(PROGRAM, args.wrap):
            error("%s is not installed (on PATH)" % PROGRAM)
            status = 1
        elif not args.skip_init:
            code, out, err, why = phase("init", build_command(args, "init"), max(300.0, 60.0 + 2.0 * args.scale), "timeout")
            domain["phases"]["init"]["timings"] = parse_init(out + "\n" + err)
            if why == "signal":
                stopped = True
            elif code != 0 or why:
                error("pgbench -i failed: " + error_message(out, err, code))
                status = 1
        if not status and not stopped:
            prefix = os.path.join(work, "txn")
            bound = args.duration if args.transactions else args.duration + 60.0
            code, out, err, why = phase("run", build_command(args, "run", prefix), bound, "duration" if args.transactions else "timeout")
            logs = sorted(os.path.join(work, name) for name in os.listdir(work) if name.startswith("txn."))
            fill(doc, args, parse_report(out), parse_progress(err), read_log(logs))
            try:
                doc["raw"]["requests"] = keep_log(logs, args.output)
            except OSError as exc:
                domain["log_not_kept"] = str(exc)
            if why == "signal":
                stopped = True
            elif why == "duration":
                cut_short = True
                doc["fidelity"]["reasons"].append("--duration %g s used up before every transaction ran" % args.duration)
            elif code != 0 or why:
                error("pgbench run failed: " + error_message(out, err, code))
                status = 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if status and not counts["failed"]:
        counts["failed"] = 1  # the run itself
    ended = time.time()
    doc["window"]["wall_s"] = ended - started
    doc["run"]["ended_at"] = now_iso(ended)
    doc["run"]["partial"] = stopped or cut_short or bool(status)
    write_document(args.output, doc)
    return 143 if stopped else status


if __name__ == "__main__":
    sys.exit(main())
