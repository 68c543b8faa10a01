"""What comes before the program starts: the site's modules, the environment, the container image, the recipe's setup_script."""
from toolz import curry

from orch.quoting import Raw, heredoc, shell_line, word
from orch.runtimes import runtime_of
from orch.sections.lines import banner

__all__ = ("modules", "environment", "environment_with", "image", "setup_script", "setup_script_with")


def modules(job):
    """The site's ``module`` lines for the job's runtime (a site profile's ``modules:``; none on the host runtime)."""
    names = tuple(job.site.modules.get(job.runtime, ()))
    if job.runtime == "host" or not names and not job.site.purge_modules:
        return ()
    lines = list(banner("modules"))
    if job.site.purge_modules:
        lines.append("module purge")
    # a module that is not there fails the job here, saying so, not later as a missing program
    lines.extend("%s || orch_fail %s 1" % (shell_line("module", "load", name),
                                           word("module load %s failed (site %s)" % (name, job.site.source or job.site.name)))
                 for name in names)
    return tuple(lines)


def environment(job, extra=()):
    """The recipe's environment, exported to what runs inside the runtime.

    ``extra`` pairs come first so that the recipe's own values win.
    """
    pairs = tuple(extra) + tuple(job.environment)
    if not pairs:
        return ()
    export = runtime_of(job).export
    return banner("environment") + tuple(export(name, value) for name, value in pairs)


@curry
def environment_with(defaults, job):
    """``environment`` with the kind's defaults: ``defaults(job)`` gives (name, value) pairs."""
    set_by_recipe = {name for name, _ in job.environment}
    return environment(job, tuple((n, v) for n, v in defaults(job) if n not in set_by_recipe))


@curry
def image(docker_source, job):
    """Lines that make sure the container image is there (nothing for the host runtime)."""
    lines = runtime_of(job).image(job, docker_source)
    return banner("container image") + tuple(lines) if lines else ()


@curry
def setup_script_with(defaults, job):
    """The recipe's own ``setup_script``, verbatim, in a subshell so it cannot end the job early.

    It sees the job's environment, the kind's defaults (``defaults(job)`` pairs, as
    ``environment_with`` takes them; None: none) and the recipe's, whatever the runtime:
    apptainer hands them to its container without exporting them on the node, so the
    subshell exports them, and the job's own commands stay as they were.
    """
    if not job.setup_script:
        return ()
    lines = list(banner("setup_script (from the recipe, verbatim)"))
    lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/setup.sh"'), job.setup_script))
    pairs = tuple(defaults(job) if defaults else ()) + tuple(job.environment)
    names = " ".join(dict.fromkeys(name for name, _ in pairs))
    run = 'bash "$ORCH_RUN_DIR/state/setup.sh"'
    if names:
        run = "(export %s; %s)" % (names, run)
    lines.append('%s || orch_fail "setup_script exited with status $?" 1' % run)
    return tuple(lines)


setup_script = setup_script_with(None)
