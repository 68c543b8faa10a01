"""``orch pull``: on the login node, every image (and Ollama model) some recipes and experiments will use."""
import sys

from orch.errors import OrchError, RecipeError

__all__ = ("cmd_pull", "jobs_of_files")


def jobs_of_files(paths, *, site, runtime, kinds=None):
    """Every job the files describe: a recipe's (its ``monitoring:`` part too), an experiment's members as ``orch run`` makes them.

    Every problem of every file is gathered before anything runs.
    """
    from orch.cli.recipes import first_key
    from orch.experiment_jobs import member_jobs
    from orch.experiments import parse_experiment
    from orch.recipe import parse_job, read_recipe

    jobs, problems = [], []
    for path in paths:
        try:
            text = read_recipe(path)
            if first_key(path) == "experiment":
                experiment = parse_experiment(text, str(path), site=site, runtime=runtime, kinds=kinds)
                jobs.extend(job for _, job in member_jobs(experiment, "pull", "orch-runs", site=site, runtime=runtime,
                                                          member_id=lambda index: "pull%d" % index, kinds=kinds))
            else:
                jobs.append(parse_job(text, str(path), site=site, runtime=runtime, kinds=kinds))
                if "\nmonitoring:" in "\n" + text:
                    jobs.append(parse_job(text, str(path), site=site, runtime=runtime, kinds=kinds, part="monitoring"))
        except RecipeError as error:
            problems.extend(error.problems)
    if problems:
        raise RecipeError(problems)
    return jobs


def cmd_pull(args):
    from orch.cli.jobs import remote_option
    from orch.cli.recipes import kinds_with_plugins
    from orch.effects.process import run
    from orch.pulling import images_of, models_of, pull_script

    kinds = kinds_with_plugins(args.plugin)
    jobs = jobs_of_files(args.files, site=args.site, runtime=args.runtime, kinds=kinds)
    remote = remote_option(args)
    script = pull_script(jobs, kinds, force=args.force, python="python3" if remote else sys.executable)
    if args.dry_run:
        sys.stdout.write(script)
        return 0
    if not any(images_of(job, kinds) or models_of(job) for job in jobs):
        print("orch pull: these jobs use no image and no model (the host runtime runs programs from PATH): nothing to do",
              file=sys.stderr)
        return 0
    # progress goes to the terminal as it happens (stderr: stdout stays for what a command returns)
    done = run(("bash", "-s"), input=script, timeout=args.timeout, remote=remote, stream=sys.stderr)
    if done.exit_code == 124:
        raise OrchError("orch pull: gave up after %d s (--timeout); what was done so far stays done" % args.timeout)
    if done.exit_code != 0:
        raise OrchError("orch pull: preparing the images failed (exit status %d); what failed is above" % done.exit_code)
    return 0
