"""``orch submit``, ``status``, ``wait``, ``logs``, ``cancel``, ``results`` and ``report``: one run at a time, or several."""
import sys

from orch.errors import UsageError
from orch.cli.show import state_text, status_table

__all__ = ("cmd_submit", "cmd_status", "cmd_wait", "cmd_logs", "cmd_cancel", "cmd_results", "cmd_report", "remote_option")


def remote_option(args):
    """The ``--remote`` login node, parsed (None for this machine)."""
    from orch.argv import parse_remote

    if not getattr(args, "remote", None):
        return None
    try:
        return parse_remote(args.remote)
    except ValueError as error:
        raise UsageError("--remote: %s" % error) from None


def cmd_submit(args):
    from orch.cli.recipes import driver_python, kinds_with_plugins
    from orch.effects import registry
    from orch.runs import submit_recipe

    target = registry.find(args.target) if args.target else None
    record = submit_recipe(args.recipe, site=args.site, runtime=args.runtime, remote=remote_option(args), run_id=args.id,
                           target=target, target_endpoint=args.target_endpoint, kinds=kinds_with_plugins(args.plugin),
                           python=driver_python(args))
    print("%s %s" % (record["job_id"], record["id"]))
    print("submitted %s as SLURM job %s, orch id %s" % (record["job_name"], record["job_id"], record["id"]), file=sys.stderr)
    return 0


def cmd_status(args):
    from orch.effects import registry
    from orch.experiment_runs import members_of, refresh_experiments
    from orch.runs import status_json

    records = registry.all_runs()
    if args.ids:
        chosen = []
        for key in args.ids:
            record = registry.find(key, records)
            # an experiment's status is its own line and its members'
            chosen += [record] + (members_of(record, records) if record["role"] == "experiment" else [])
        records = chosen
    records = refresh_experiments(records)
    sys.stdout.write(status_json(records) + "\n" if args.json else status_table(records))
    return 0


def cmd_wait(args):
    from orch.experiment_runs import wait_for

    record = wait_for(args.id, args.state, args.timeout)
    print("%s %s" % (record["id"], state_text(record)))
    return 0


def cmd_logs(args):
    import os
    import time

    from orch.effects import registry
    from orch.lifecycle import TERMINAL
    from orch.runs import log_files, read_log, refresh

    record = registry.find(args.id)
    offsets = {}
    while True:
        paths = log_files(record)
        for path in paths:
            text = read_log(path, record, offsets.get(path, 0))
            if text:
                if not args.follow and len(paths) > 1:
                    sys.stdout.write("==> %s <==\n" % os.path.basename(path))
                sys.stdout.write(text)
                sys.stdout.flush()
                offsets[path] = offsets.get(path, 0) + len(text.encode("utf-8"))
        if not args.follow or record["state"] in TERMINAL:
            return 0
        time.sleep(1)
        record = refresh([record])[0]


def cmd_results(args):
    import json

    from orch.effects import registry
    from orch.experiment_runs import documents_of
    from orch.results import csv_text, flatten, table_text

    records = registry.all_runs()
    documents = []
    for key in args.ids:
        record = registry.find(key, records)
        found = documents_of(record)
        if not found:
            raise UsageError("%s has no results yet (state %s)" % (record["id"], record["state"]))
        documents.extend(found)
    if args.format == "json":
        print(json.dumps(documents, indent=2, sort_keys=True))
        return 0
    rows = [flatten(d) for d in documents]
    sys.stdout.write(table_text(rows) if args.format == "table" else csv_text(rows))
    return 0


def cmd_report(args):
    from orch.effects import registry
    from orch.experiment_runs import documents_of, refresh_experiments
    from orch.lifecycle import TERMINAL
    from orch.report import write_report

    records = registry.all_runs()
    runs = []
    for key in [args.run_a] + ([args.run_b] if args.run_b else []):
        record = refresh_experiments([registry.find(key, records)])[0]
        documents = documents_of(record)
        if not documents and record["state"] not in TERMINAL:
            raise UsageError("%s has no results yet (state %s)" % (record["id"], record["state"]))
        runs.append((record, documents))
    for path in write_report(runs, args.out):
        if path.endswith((".md", ".html")):
            print(path)
    return 0


def cmd_cancel(args):
    from orch.effects import registry
    from orch.lifecycle import TERMINAL
    from orch.runs import cancel_runs

    records = registry.all_runs()
    if args.all:
        chosen = [r for r in records if r["state"] not in TERMINAL]
    elif args.ids:
        chosen = [registry.find(key, records) for key in args.ids]
    else:
        raise UsageError("cancel: name a run, or --all")
    for record in cancel_runs(chosen, wait=0 if args.no_wait else 60):
        print("%s %s" % (record["id"], state_text(record)))
    return 0
