"""The one argument parser of ``orch``: each option group is written once and shared by the commands that take it."""
import argparse

from orch import __version__
from orch.cli import experiments, images, jobs, recipes

__all__ = ("parser",)


def _group(title, *arguments):
    """A parent parser holding ``arguments`` (``(flags, options)`` pairs) under ``title``."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group(title)
    for flags, options in arguments:
        group.add_argument(*flags, **options)
    return parent


WHERE = _group(
    "where it runs",
    (("--site",), {"default": "meluxina", "metavar": "NAME|FILE",
                   "help": "site profile: meluxina (default), local, one of yours in ~/.orch/sites, or a profile file"}),
    (("--runtime",), {"metavar": "apptainer|charliecloud|host",
                      "help": "how programs run on the node (default: the site's: apptainer on meluxina, host on local)"}),
    (("--python",), {"metavar": "PATH", "help": "the Python that runs a client's load generator on the node "
                                               "(default: this one, %(default)s; a site's python wins)"}),
)
RENDERING = _group(
    "rendering",
    (("--id",), {"help": "job id (render: a new random one each time; validate: from the recipe's content)"}),
    (("--run-dir",), {"help": "the run directory (default: orch-runs/<name>_<id>)"}),
    (("--endpoints-dir",), {"help": "where services publish endpoints (default: orch-runs/endpoints)"}),
    (("--part",), {"choices": ("monitoring",), "help": "render the recipe's monitoring: block instead"}),
)
LOGIN = _group(
    "login node",
    (("--remote",), {"metavar": "USER@HOST[:PORT]", "help": "submit on this login node over ssh"}),
)


def parser():
    top = argparse.ArgumentParser(prog="orch", description="Recipes to SLURM batch scripts for benchmarking services.")
    top.add_argument("--version", action="version", version="orch " + __version__)
    top.add_argument("--plugin", action="append", default=[], metavar="MODULE[:ATTR]",
                     help="add custom kinds (an orch.kinds.Kind or a list of them; ATTR defaults to KIND)")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name, handler, help, parents=()):
        sub = commands.add_parser(name, help=help, parents=list(parents))
        sub.set_defaults(run=handler)
        return sub

    render = command("render", recipes.cmd_render, "print the SLURM script of a recipe", (WHERE, RENDERING))
    render.add_argument("recipe")
    render.add_argument("--output", "-o", help="write the script to this file instead of stdout")
    render.add_argument("--no-mkdir", action="store_true", help="do not create the run's log directory")

    validate = command("validate", recipes.cmd_validate, "check recipes; every problem as FILE:LINE: field: message",
                       (WHERE, RENDERING))
    validate.add_argument("recipes", nargs="+")

    command("list", recipes.cmd_list, "the service and client kinds, one line each")

    pull = command("pull", images.cmd_pull, "on the login node: make every image (and Ollama model) the recipes and "
                   "experiments use, where their jobs look for them; progress on stderr", (WHERE, LOGIN))
    pull.add_argument("files", nargs="+", metavar="RECIPE|EXPERIMENT")
    pull.add_argument("--force", action="store_true", help="make each job's own image anew, even when it is there")
    pull.add_argument("--dry-run", action="store_true", help="print the script that would run, and run nothing")
    pull.add_argument("--timeout", type=int, default=10800, metavar="SECONDS",
                      help="give up after this long (default: 10800; an LLM image and model can take hours)")

    submit = command("submit", jobs.cmd_submit, "render and sbatch a recipe; prints the SLURM job id and the orch id",
                     (WHERE, LOGIN))
    submit.add_argument("recipe")
    submit.add_argument("--id", help="orch id (default: a new random one)")
    aim = submit.add_mutually_exclusive_group()
    aim.add_argument("--target", metavar="ID", help="a client: load this service run (and start after it)")
    aim.add_argument("--target-endpoint", metavar="URL", help="a client: load the service at this URL")

    results = command("results", jobs.cmd_results, "a run's results: one row per client task")
    results.add_argument("ids", nargs="+", metavar="ID")
    results.add_argument("--format", choices=("table", "csv", "json"), default="table")

    run = command("run", experiments.cmd_run, "submit an experiment: its services, clients aimed at them, and what stops them",
                  (WHERE, LOGIN))
    run.add_argument("experiment")
    run.add_argument("--wait", action="store_true", help="follow the experiment until it has ended")

    stop = command("stop", experiments.cmd_stop, "cancel what is left of an experiment")
    stop.add_argument("id", metavar="RUN")

    tunnel = command("tunnel", experiments.cmd_tunnel, "the ssh command that brings a run's service (Grafana, ...) to this machine")
    tunnel.add_argument("run_id", metavar="RUN")  # not run: set_defaults(run=...) names the handler
    tunnel.add_argument("service", metavar="SERVICE", help="the service's name in the experiment (or the run's own name)")
    tunnel.add_argument("--local-port", type=int, metavar="N", help="the port on this machine (default: the service's own)")
    tunnel.add_argument("--exec", action="store_true", help="run the tunnel instead of printing it (Ctrl-C ends it)")

    report = command("report", jobs.cmd_report, "a Markdown and a self-contained HTML report of a run, or two compared")
    # run_a, not run: set_defaults(run=...) names the handler
    report.add_argument("run_a", metavar="RUN")
    report.add_argument("run_b", nargs="?", metavar="RUN_B", help="a second run: compared side by side with RUN (ratio B/A)")
    report.add_argument("--out", "-o", default="report", metavar="DIR", help="the report's directory (default: report)")

    status = command("status", jobs.cmd_status, "every run: id, job id, kind, state, node, elapsed, endpoint")
    status.add_argument("ids", nargs="*", metavar="ID")
    status.add_argument("--json", action="store_true", help="the same as a JSON list")

    wait = command("wait", jobs.cmd_wait, "wait until a run reaches a state")
    wait.add_argument("id", metavar="ID")
    wait.add_argument("--state", choices=("pending", "running", "ready", "completed", "done"), default="running")
    wait.add_argument("--timeout", type=float, default=300, help="seconds (default 300)")

    logs = command("logs", jobs.cmd_logs, "a run's stdout and stderr")
    logs.add_argument("id", metavar="ID")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")

    cancel = command("cancel", jobs.cmd_cancel, "scancel runs and wait until they have ended")
    cancel.add_argument("ids", nargs="*", metavar="ID")
    cancel.add_argument("--all", action="store_true", help="every run that has not ended")
    cancel.add_argument("--no-wait", action="store_true", help="return right after scancel")
    return top
