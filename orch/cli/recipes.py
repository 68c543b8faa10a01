"""``orch render``, ``validate`` and ``list``: recipes in, scripts and verdicts out; nothing is submitted."""
import sys

from orch.errors import RecipeError, UsageError

__all__ = ("cmd_render", "cmd_validate", "cmd_list", "kinds_with_plugins", "first_key")


def kinds_with_plugins(plugins):
    """The kinds table, with the kinds named by ``--plugin module[:attr]`` added.

    Without ``:attr`` the module is read as discovery reads orch's own: its ``KIND`` or ``KINDS``.
    """
    from importlib import import_module

    from orch.kinds import KINDS, module_kinds, register

    table = KINDS
    for spec in plugins:
        module_name, _, attr = spec.partition(":")
        try:
            module = import_module(module_name)
            if attr and not hasattr(module, attr):
                raise AttributeError("module %r has no attribute %r" % (module_name, attr))
            found = module_kinds(module, (attr,) if attr else ("KIND", "KINDS"))
            if not found:
                raise AttributeError("module %r has no attribute 'KIND' or 'KINDS'" % module_name)
        except (ImportError, AttributeError) as error:
            raise UsageError("--plugin %s: %s" % (spec, error)) from None
        except TypeError as error:
            raise UsageError(str(error)) from None
        for kind in found:
            table = register(kind, table)
    return table


def _job(args, path, kinds):
    from orch.recipe import load_job

    return load_job(path, site=args.site, runtime=args.runtime, job_id=args.id, run_dir=args.run_dir,
                    endpoints_dir=args.endpoints_dir, part=args.part, kinds=kinds, python=driver_python(args))


def driver_python(args):
    """The interpreter a client's load generator runs with on the node: ``--python``, else the one running orch now."""
    return args.python or sys.executable


def cmd_render(args):
    import os

    from orch import render_job
    from orch.effects.files import make_dirs, write_atomically

    from orch.effects.registry import new_id

    kinds = kinds_with_plugins(args.plugin)
    # a new id each time (as submit gives): two renders of one recipe, each piped to sbatch, never share
    # a run directory, its state markers or its data; --id fixes it for a reproducible script
    args.id = args.id or new_id()
    job = _job(args, args.recipe, kinds)
    script = render_job(job, kinds)
    if not args.no_mkdir:
        # the one effect of render, for `orch render R | sbatch`: sbatch opens --output before the
        # script runs, and a job whose log directory is missing fails to launch (JobLaunchFailure)
        make_dirs(os.path.join(job.run_dir, "logs"))
    if args.output:
        write_atomically(args.output, script, mode=0o755)
    else:
        sys.stdout.write(script)
    return 0


def cmd_validate(args):
    kinds = kinds_with_plugins(args.plugin)
    failed = 0
    for path in args.recipes:
        try:
            top = first_key(path)
            if top == "experiment":
                print("%s: ok (%s)" % (path, _experiment_summary(path, args, kinds)))
                continue
            if top == "site":
                from orch.recipe import read_recipe
                from orch.sites import parse_site

                site = parse_site(read_recipe(path, "site profile"), path)
                print("%s: ok (site %s: %s runtime, pull %s)" % (path, site.name, site.runtime, site.pull))
                continue
            job = _job(args, path, kinds)
        except RecipeError as error:
            failed += 1
            for problem in error.problems:
                print(problem, file=sys.stderr)
        else:
            print("%s: ok (%s %s)" % (path, job.role, job.kind))
    return RecipeError.exit_code if failed else 0


def _experiment_summary(path, args, kinds):
    from orch.experiments import parse_experiment
    from orch.recipe import read_recipe

    experiment = parse_experiment(read_recipe(path, "experiment"), path, site=args.site, runtime=args.runtime, kinds=kinds)
    monitors = [m.alias for m in experiment.services if m.monitoring]
    text = "experiment: %d services, %d clients" % (len(experiment.services) - len(monitors), len(experiment.clients))
    if monitors:
        text += "; monitoring: %s" % ", ".join(monitors + list(experiment.exporters))
    return text


def first_key(path):
    """The file's first top-level key (``experiment``, ``site``, ``service``, ...), cheaply: no YAML parse."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    return line.split(":", 1)[0].strip() if not line[0].isspace() else None
    except (OSError, UnicodeDecodeError):
        return None
    return None


def cmd_list(args):
    kinds = kinds_with_plugins(args.plugin)
    for role in ("service", "client"):
        for kind in sorted((k for k in kinds.values() if k.role == role), key=lambda k: k.name):
            print("%-18s %-8s %s" % (kind.name, role, kind.summary))
    return 0
