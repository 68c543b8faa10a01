"""The command line: ``orch render | validate | list``.

Errors are one line each on stderr, with a non-zero status: 2 for a bad
recipe or bad usage. Nothing is printed on stdout unless the whole command
succeeded, so ``orch render x.yaml | sbatch`` never submits half a script.
"""
import argparse
import os
import sys

from orch import __version__

__all__ = ("main",)

EXIT_RECIPE = 2


class UsageError(Exception):
    """Bad command-line input (exit status 2)."""


def _kinds(plugins):
    """The kinds table, with the kinds named by ``--plugin module:attr`` added."""
    from importlib import import_module

    from orch.kinds import KINDS, Kind, register

    table = KINDS
    for spec in plugins:
        module_name, _, attr = spec.partition(":")
        try:
            found = getattr(import_module(module_name), attr or "KIND")
        except (ImportError, AttributeError) as error:
            raise UsageError("--plugin %s: %s" % (spec, error)) from None
        for kind in found if isinstance(found, (list, tuple)) else (found,):
            if not isinstance(kind, Kind):
                raise UsageError("--plugin %s: %r is not an orch.kinds.Kind" % (spec, kind))
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
            job = _job(args, path, kinds)
        except RecipeError as error:
            failed += 1
            for problem in error.problems:
                print(problem, file=sys.stderr)
        else:
            print("%s: ok (%s %s)" % (path, job.role, job.kind))
    return EXIT_RECIPE if failed else 0


def cmd_list(args):
    kinds = _kinds(args.plugin)
    for role in ("service", "client"):
        for kind in sorted((k for k in kinds.values() if k.role == role), key=lambda k: k.name):
            print("%-18s %-8s %s" % (kind.name, role, kind.summary))
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
    return top


def main(argv=None):
    from orch.errors import OrchError, RecipeError

    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except RecipeError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_RECIPE
    except UsageError as error:
        print("orch: %s" % error, file=sys.stderr)
        return EXIT_RECIPE
    except OrchError as error:
        print("orch: %s" % error, file=sys.stderr)
        return 1
    except OSError as error:
        print("orch: %s" % error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
