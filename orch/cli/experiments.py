"""``orch run``, ``stop`` and ``tunnel``: experiments, and reaching their services from this machine."""
import sys

from orch.cli.jobs import remote_option
from orch.cli.show import member_name, state_text
from orch.errors import UsageError

__all__ = ("cmd_run", "cmd_stop", "cmd_tunnel")


def cmd_run(args):
    import time

    from orch.cli.recipes import driver_python, kinds_with_plugins
    from orch.experiment_runs import members_of, refresh_experiments, run_experiment
    from orch.lifecycle import TERMINAL

    record = run_experiment(args.experiment, site=args.site, runtime=args.runtime, remote=remote_option(args),
                            kinds=kinds_with_plugins(args.plugin), python=driver_python(args))
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
            shown = state_text(item)
            if seen.get(item["id"]) != shown:
                print("%s %-16s %s" % (item["id"], member_name(item, record), shown), file=sys.stderr)
                seen[item["id"]], changed = shown, True
        # one squeue a second while things move, fewer while they do not
        pause = 1.0 if changed else min(pause * 1.5, 10.0)
        if record["state"] in TERMINAL:
            return 0 if record["state"] == "completed" else 1


def cmd_stop(args):
    from orch.effects import registry
    from orch.experiment_runs import stop_experiment

    record = registry.find(args.id)
    if record["role"] != "experiment":
        raise UsageError("%s is a single job: use orch cancel" % record["id"])
    for member in stop_experiment(record):
        print("%s %s %s" % (member["id"], member.get("alias") or member["name"], state_text(member)))
    return 0


def cmd_tunnel(args):
    from orch import tunnel
    from orch.effects import registry
    from orch.effects.process import orch_ssh_config, replace_process
    from orch.experiment_runs import members_of
    from orch.runs import remote_of

    if args.local_port is not None and not 1 <= args.local_port <= 65535:
        raise UsageError("--local-port: %d is not a port (1-65535)" % args.local_port)
    records = registry.all_runs()
    record = registry.find(args.run_id, records)
    members = members_of(record, records) if record["role"] == "experiment" else []
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
    from orch import tunnel
    from orch.effects import files
    from orch.errors import SchedulerError
    from orch.lifecycle import TERMINAL
    from orch.runs import refresh, remote_of

    try:
        service = refresh([service])[0]
    except SchedulerError:
        pass  # the scheduler cannot say; the endpoint file still can
    name = service.get("alias") or service["name"]
    if service["state"] in TERMINAL:
        raise tunnel.NoEndpoint("%s (%s) has ended (%s): nothing to tunnel to" % (name, service["id"], service["state"]))
    address = tunnel.endpoint_address(service.get("endpoint"), service["id"])
    for path in tunnel.endpoint_files(service):
        address = address or tunnel.endpoint_address(files.read_text(path, remote=remote_of(service)), service["id"])
    if address is None:
        raise tunnel.NoEndpoint("%s (%s) has published no endpoint yet (state %s): orch wait %s --state ready"
                                % (name, service["id"], service["state"], service["id"]))
    return address
