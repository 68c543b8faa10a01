"""The command line: ``orch render | validate | list | submit | status | wait | logs | cancel | results | run | stop | report | tunnel``.

Errors are one line each on stderr, with a non-zero status: 2 for a bad
recipe or bad usage, 3 when the login node cannot be reached, 4 when sbatch
refuses a job, 1 for the rest (a wait that failed or timed out). Nothing is
printed on stdout unless the whole command succeeded, so
``orch render x.yaml | sbatch`` never submits half a script.
"""
import argparse
import os
import sys

from orch import __version__

__all__ = ("main",)

EXIT_RECIPE = 2
EXIT_CONNECTION = 3
EXIT_SUBMISSION = 4


class UsageError(Exception):
    """Bad command-line input (exit status 2)."""


def _kinds(plugins):
    """The kinds table, with the kinds named by ``--plugin module:attr`` added."""
    from importlib import import_module

    from orch.kinds import KINDS, kinds_in, register

    table = KINDS
    for spec in plugins:
        module_name, _, attr = spec.partition(":")
        try:
            found = kinds_in(getattr(import_module(module_name), attr or "KIND"), "--plugin %s" % spec)
        except (ImportError, AttributeError) as error:
            raise UsageError("--plugin %s: %s" % (spec, error)) from None
        except TypeError as error:
            raise UsageError(str(error)) from None
        for kind in found:
            table = register(kind, table)
    return table


def _job(args, path, kinds):
    from orch.recipe import load_job

    return load_job(
        path,
        site=args.site,
        runtime=args.runtime,
        job_id=args.id,
        run_dir=args.run_dir,
        endpoints_dir=args.endpoints_dir,
        part=args.part,
        kinds=kinds,
    )


def cmd_render(args):
    from orch import render_job

    kinds = _kinds(args.plugin)
    job = _job(args, args.recipe, kinds)
    script = render_job(job, kinds)
    if not args.no_mkdir:
        # sbatch opens --output before the script runs: the log directory must exist
        os.makedirs(os.path.join(job.run_dir, "logs"), exist_ok=True)
    if args.output:
        _write_atomically(args.output, script)
    else:
        sys.stdout.write(script)
    return 0


def _write_atomically(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


def cmd_validate(args):
    from orch.errors import RecipeError

    kinds = _kinds(args.plugin)
    failed = 0
    for path in args.recipes:
        try:
            if _is_experiment(path):
                from orch.experiments import parse_experiment

                with open(path, encoding="utf-8") as handle:
                    experiment = parse_experiment(handle.read(), path, site=args.site, runtime=args.runtime, kinds=kinds)
                monitors = [m.alias for m in experiment.services if m.monitoring]
                print("%s: ok (experiment: %d services, %d clients%s)" % (
                    path, len(experiment.services) - len(monitors), len(experiment.clients),
                    "; monitoring: %s" % ", ".join(monitors + list(experiment.exporters)) if monitors else ""))
                continue
            job = _job(args, path, kinds)
        except RecipeError as error:
            failed += 1
            for problem in error.problems:
                print(problem, file=sys.stderr)
        else:
            print("%s: ok (%s %s)" % (path, job.role, job.kind))
    return EXIT_RECIPE if failed else 0


def _is_experiment(path):
    """True for a file whose first top-level key is experiment: (cheap: no YAML parse)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    return line.startswith("experiment:")
    except (OSError, UnicodeDecodeError):
        return False
    return False


def cmd_list(args):
    kinds = _kinds(args.plugin)
    for role in ("service", "client"):
        for kind in sorted((k for k in kinds.values() if k.role == role), key=lambda k: k.name):
            print("%-18s %-8s %s" % (kind.name, role, kind.summary))
    return 0


def _remote(args):
    from orch.slurm import parse_remote

    if not getattr(args, "remote", None):
        return None
    try:
        return parse_remote(args.remote)
    except ValueError as error:
        raise UsageError("--remote: %s" % error) from None


def cmd_submit(args):
    from orch.runs import submit_recipe

    target = None
    if args.target:
        from orch import registry

        target = registry.find(args.target)
    record = submit_recipe(args.recipe, site=args.site, runtime=args.runtime, remote=_remote(args), run_id=args.id,
                           target=target, target_endpoint=args.target_endpoint, kinds=_kinds(args.plugin))
    print("%s %s" % (record["job_id"], record["id"]))
    print("submitted %s as SLURM job %s, orch id %s" % (record["job_name"], record["job_id"], record["id"]), file=sys.stderr)
    return 0


def _endpoint_text(record):
    endpoint = record.get("endpoint")
    if not endpoint or record["state"] != "running":
        return "-"
    return "%s:%s" % (endpoint.get("host"), endpoint.get("port"))


def _state_text(record):
    state = record["state"]
    if state == "running" and record.get("role") == "service":
        state += " (ready)" if record.get("ready") else " (starting)"
    if record.get("reason") and state in ("failed", "pending", "cancelled"):
        state += ": " + record["reason"]
    return state


def cmd_status(args):
    from orch import registry
    from orch.runs import as_json, members_of, refresh_experiments

    records = registry.all_runs()
    if args.ids:
        chosen = []
        for key in args.ids:
            record = registry.find(key, records)
            # an experiment's status is its own line and its members'
            chosen += [record] + (members_of(record, records) if record.get("role") == "experiment" else [])
        records = chosen
    records = refresh_experiments(records)
    if args.json:
        print(as_json(records))
        return 0
    rows = [("ID", "JOB", "KIND", "STATE", "NODE", "ELAPSED", "ENDPOINT")]
    rows += [
        (r["id"], str(r.get("job_id") or "-"), r["kind"], _state_text(r), r.get("node") or "-", r.get("elapsed") or "-", _endpoint_text(r))
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0


def cmd_wait(args):
    from orch.runs import wait_for

    record = wait_for(args.id, args.state, args.timeout)
    print("%s %s" % (record["id"], _state_text(record)))
    return 0


def cmd_logs(args):
    import time

    from orch import registry
    from orch.lifecycle import TERMINAL
    from orch.runs import log_files, read_log, refresh

    record = registry.find(args.id)
    offsets = {}
    while True:
        for path in log_files(record):
            text = read_log(path, record, offsets.get(path, 0))
            if text:
                if not args.follow and len(log_files(record)) > 1:
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

    from orch import registry
    from orch.results import csv_text, flatten, table_text
    from orch.runs import result_documents

    records = registry.all_runs()
    documents = []
    for key in args.ids:
        record = registry.find(key, records)
        found = result_documents(record)
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
    from orch import registry
    from orch.lifecycle import TERMINAL
    from orch.report import write_report
    from orch.runs import refresh_experiments, result_documents

    records = registry.all_runs()
    runs = []
    for key in [args.run_a] + ([args.run_b] if args.run_b else []):
        record = refresh_experiments([registry.find(key, records)])[0]
        documents = result_documents(record)
        if not documents and record["state"] not in TERMINAL:
            raise UsageError("%s has no results yet (state %s)" % (record["id"], record["state"]))
        runs.append((record, documents))
    for path in write_report(runs, args.out):
        if path.endswith((".md", ".html")):
            print(path)
    return 0


def cmd_run(args):
    import time

    from orch.lifecycle import TERMINAL
    from orch.runs import members_of, refresh_experiments, run_experiment

    record = run_experiment(args.experiment, site=args.site, runtime=args.runtime, remote=_remote(args), kinds=_kinds(args.plugin))
    print(record["id"])
    print("submitted experiment %s as run %s: %s" % (
        record["name"], record["id"], ", ".join("%s %s" % (m["role"], m["alias"]) for m in record["members"])), file=sys.stderr)
    if not args.wait:
        return 0
    seen, pause = {}, 1.0
    while True:
        time.sleep(pause)
        record = refresh_experiments([record])[0]
        # live progress: a line whenever the run or one of its jobs changes state
        changed = False
        for item in [record] + members_of(record):
            shown = _state_text(item)
            if seen.get(item["id"]) != shown:
                name = "run" if item is record else (item.get("alias") or item["name"])
                print("%s %-16s %s" % (item["id"], name, shown), file=sys.stderr)
                seen[item["id"]], changed = shown, True
        # one squeue a second while things move, fewer while they do not
        pause = 1.0 if changed else min(pause * 1.5, 10.0)
        if record["state"] in TERMINAL:
            return 0 if record["state"] == "completed" else 1


def cmd_stop(args):
    from orch import registry
    from orch.runs import stop_experiment

    record = registry.find(args.id)
    if record.get("role") != "experiment":
        raise UsageError("%s is a single job: use orch cancel" % record["id"])
    for member in stop_experiment(record):
        print("%s %s %s" % (member["id"], member.get("alias", member["name"]), _state_text(member)))
    return 0


def cmd_tunnel(args):
    from orch import registry, tunnel
    from orch.runs import members_of, remote_of
    from orch.slurm import orch_ssh_config, replace_process

    if args.local_port is not None and not 1 <= args.local_port <= 65535:
        raise UsageError("--local-port: %d is not a port (1-65535)" % args.local_port)
    records = registry.all_runs()
    record = registry.find(args.run_id, records)
    members = members_of(record, records) if record.get("role") == "experiment" else []
    service = tunnel.service_named(record, members, args.service)
    if service is None:
        names = tunnel.service_names(tunnel.services(record, members))
        raise UsageError("%s has no service %r (its services: %s)" % (record["id"], args.service, ", ".join(names) or "none"))
    host, port = _published_address(service)
    remote = remote_of(service)
    if remote is None:
        print("%s runs on this machine's network: no tunnel needed" % args.service, file=sys.stderr)
        print(tunnel.service_url(host, port))
        return 0
    local_port = args.local_port or port
    argv = tunnel.tunnel_argv(remote, host, port, local_port, orch_ssh_config())
    print(tunnel.command_text(argv))
    print(tunnel.local_url(local_port))
    if args.exec:
        sys.stdout.flush()
        print("forwarding localhost:%d to %s:%d through %s; Ctrl-C ends it" % (local_port, host, port, remote.destination), file=sys.stderr)
        replace_process(argv)
    return 0


def _published_address(service):
    """``(host, port)`` the service published: in its record once refreshed, else in its endpoint file.

    Raises ``tunnel.NoEndpoint`` when it has ended or has published nothing yet.
    """
    from orch import slurm, tunnel
    from orch.lifecycle import TERMINAL
    from orch.runs import refresh, remote_of

    try:
        service = refresh([service])[0]
    except slurm.SchedulerError:
        pass  # the scheduler cannot say; the endpoint file still can
    name = service.get("alias") or service["name"]
    if service["state"] in TERMINAL:
        raise tunnel.NoEndpoint("%s (%s) has ended (%s): nothing to tunnel to" % (name, service["id"], service["state"]))
    address = tunnel.endpoint_address(service.get("endpoint"), service["id"])
    for path in tunnel.endpoint_files(service):
        address = address or tunnel.endpoint_address(slurm.read_text(path, remote=remote_of(service)), service["id"])
    if address is None:
        raise tunnel.NoEndpoint("%s (%s) has published no endpoint yet (state %s): orch wait %s --state ready"
                                % (name, service["id"], service["state"], service["id"]))
    return address


def cmd_cancel(args):
    from orch import registry
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
        print("%s %s" % (record["id"], _state_text(record)))
    return 0


def _recipe_options(parser):
    parser.add_argument("--site", default="meluxina", help="site profile: meluxina (default) or local")
    parser.add_argument("--runtime", default="apptainer", help="apptainer (default) or host")
    parser.add_argument("--id", help="job id (default: from the recipe's content)")
    parser.add_argument("--run-dir", help="the run directory (default: orch-runs/<name>_<id>)")
    parser.add_argument("--endpoints-dir", help="where services publish endpoints (default: orch-runs/endpoints)")
    parser.add_argument("--part", choices=("monitoring",), help="render the recipe's monitoring: block instead")


def parser():
    top = argparse.ArgumentParser(prog="orch", description="Recipes to SLURM batch scripts for benchmarking services.")
    top.add_argument("--version", action="version", version="orch " + __version__)
    top.add_argument("--plugin", action="append", default=[], metavar="MODULE:ATTR",
                     help="add custom kinds (an orch.kinds.Kind or a list of them)")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    render = commands.add_parser("render", help="print the SLURM script of a recipe")
    render.add_argument("recipe")
    _recipe_options(render)
    render.add_argument("--output", "-o", help="write the script to this file instead of stdout")
    render.add_argument("--no-mkdir", action="store_true", help="do not create the run's log directory")
    render.set_defaults(run=cmd_render)

    validate = commands.add_parser("validate", help="check recipes; every problem as FILE:LINE: field: message")
    validate.add_argument("recipes", nargs="+")
    _recipe_options(validate)
    validate.set_defaults(run=cmd_validate)

    listing = commands.add_parser("list", help="the service and client kinds, one line each")
    listing.set_defaults(run=cmd_list)

    submit = commands.add_parser("submit", help="render and sbatch a recipe; prints the SLURM job id and the orch id")
    submit.add_argument("recipe")
    submit.add_argument("--site", default="meluxina", help="site profile: meluxina (default) or local")
    submit.add_argument("--runtime", default="apptainer", help="apptainer (default) or host")
    submit.add_argument("--id", help="orch id (default: a new random one)")
    submit.add_argument("--remote", metavar="USER@HOST[:PORT]", help="submit on this login node over ssh")
    aim = submit.add_mutually_exclusive_group()
    aim.add_argument("--target", metavar="ID", help="a client: load this service run (and start after it)")
    aim.add_argument("--target-endpoint", metavar="URL", help="a client: load the service at this URL")
    submit.set_defaults(run=cmd_submit)

    results = commands.add_parser("results", help="a run's results: one row per client task")
    results.add_argument("ids", nargs="+", metavar="ID")
    results.add_argument("--format", choices=("table", "csv", "json"), default="table")
    results.set_defaults(run=cmd_results)

    run = commands.add_parser("run", help="submit an experiment: its services, clients aimed at them, and what stops them")
    run.add_argument("experiment")
    run.add_argument("--site", default="meluxina", help="site profile: meluxina (default) or local")
    run.add_argument("--runtime", default="apptainer", help="apptainer (default) or host")
    run.add_argument("--remote", metavar="USER@HOST[:PORT]", help="submit on this login node over ssh")
    run.add_argument("--wait", action="store_true", help="follow the experiment until it has ended")
    run.set_defaults(run=cmd_run)

    stop = commands.add_parser("stop", help="cancel what is left of an experiment")
    stop.add_argument("id", metavar="RUN")
    stop.set_defaults(run=cmd_stop)

    tunnel = commands.add_parser("tunnel", help="the ssh command that brings a run's service (Grafana, ...) to this machine")
    tunnel.add_argument("run_id", metavar="RUN")  # not run: set_defaults(run=...) names the handler
    tunnel.add_argument("service", metavar="SERVICE", help="the service's name in the experiment (or the run's own name)")
    tunnel.add_argument("--local-port", type=int, metavar="N", help="the port on this machine (default: the service's own)")
    tunnel.add_argument("--exec", action="store_true", help="run the tunnel instead of printing it (Ctrl-C ends it)")
    tunnel.set_defaults(run=cmd_tunnel)

    report = commands.add_parser("report", help="a Markdown and a self-contained HTML report of a run, or two compared")
    # run_a, not run: set_defaults(run=...) names the handler
    report.add_argument("run_a", metavar="RUN")
    report.add_argument("run_b", nargs="?", metavar="RUN_B", help="a second run: compared side by side with RUN (ratio B/A)")
    report.add_argument("--out", "-o", default="report", metavar="DIR", help="the report's directory (default: report)")
    report.set_defaults(run=cmd_report)

    status = commands.add_parser("status", help="every run: id, job id, kind, state, node, elapsed, endpoint")
    status.add_argument("ids", nargs="*", metavar="ID")
    status.add_argument("--json", action="store_true", help="the same as a JSON list")
    status.set_defaults(run=cmd_status)

    wait = commands.add_parser("wait", help="wait until a run reaches a state")
    wait.add_argument("id", metavar="ID")
    wait.add_argument("--state", choices=("pending", "running", "ready", "completed", "done"), default="running")
    wait.add_argument("--timeout", type=float, default=300, help="seconds (default 300)")
    wait.set_defaults(run=cmd_wait)

    logs = commands.add_parser("logs", help="a run's stdout and stderr")
    logs.add_argument("id", metavar="ID")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    logs.set_defaults(run=cmd_logs)

    cancel = commands.add_parser("cancel", help="scancel runs and wait until they have ended")
    cancel.add_argument("ids", nargs="*", metavar="ID")
    cancel.add_argument("--all", action="store_true", help="every run that has not ended")
    cancel.add_argument("--no-wait", action="store_true", help="return right after scancel")
    cancel.set_defaults(run=cmd_cancel)
    return top


def main(argv=None):
    from orch.errors import RecipeError

    args = parser().parse_args(argv)
    try:
        code = args.run(args)
        # what is still buffered goes now, while a closed pipe can still be answered quietly
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the reader went away (orch render ... | head -1): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except RecipeError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_RECIPE
    except UsageError as error:
        print("orch: %s" % error, file=sys.stderr)
        return EXIT_RECIPE
    except Exception as error:
        code = _exit_code(error)
        if code is None:
            raise
        print("orch: %s" % error, file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130


def _exit_code(error):
    """The exit status for an error orch expects, or None for a bug (which keeps its traceback)."""
    from orch.errors import OrchError
    from orch.registry import NotFound
    from orch.runs import WaitFailed
    from orch.slurm import ConnectionError_, SubmissionError

    for kind, code in ((ConnectionError_, EXIT_CONNECTION), (SubmissionError, EXIT_SUBMISSION), (NotFound, EXIT_RECIPE),
                       (WaitFailed, 1), (OrchError, 1), (OSError, 1)):
        if isinstance(error, kind):
            return code
    return None
