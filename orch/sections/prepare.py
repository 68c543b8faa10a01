"""What comes before the program starts: the site's modules, the container image, the recipe's setup_script."""
from toolz import curry

from orch.quoting import Raw, heredoc, shell_line, word
from orch.runtimes import runtime_of
from orch.sections.environment import on_node
from orch.sections.lines import banner

__all__ = ("modules", "image", "setup_script", "setup_script_with")


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


@curry
def image(docker_source, job):
    """Lines that make sure the container image is there (nothing for the host runtime)."""
    lines = runtime_of(job).image(job, docker_source)
    return banner("container image") + tuple(lines) if lines else ()


@curry
def setup_script_with(defaults, job):
    """The recipe's own ``setup_script``, verbatim, in a bash of its own so it cannot end the job early.

    It runs on the node, whatever the runtime, with the kind's default variables (``defaults(job)``
    pairs, as ``environment_with`` takes them; None: none) and the recipe's, in a process of its
    own (``on_node``): the job's shell never gets them.
    """
    if not job.setup_script:
        return ()
    lines = list(banner("setup_script (from the recipe, verbatim)"))
    lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/setup.sh"'), job.setup_script))
    # "$BASH": the recipe's PATH may not lead to bash
    run = '"$BASH" "$ORCH_RUN_DIR/state/setup.sh"'
    if job.environment or (defaults and tuple(defaults(job))):
        run = shell_line(*on_node((Raw('"$BASH"'), Raw('"$ORCH_RUN_DIR/state/setup.sh"'))))
    lines.append('%s || orch_fail "setup_script exited with status $?" 1' % run)
    return tuple(lines)


setup_script = setup_script_with(None)
