"""What comes before the program starts: the site's modules, the container image, the recipe's setup_script."""
from toolz import curry

from orch.quoting import Raw, heredoc, parts_word, shell_line
from orch.runtimes import runtime_of
from orch.sections.environment import in_environment, recipe_pairs
from orch.sections.lines import banner

__all__ = ("modules", "image", "setup_script")


def modules(job):
    """The site's ``module`` lines: what the Apptainer runtime needs (nothing on the host runtime)."""
    if job.runtime != "apptainer" or not job.site.modules and not job.site.purge_modules:
        return ()
    lines = list(banner("modules"))
    if job.site.purge_modules:
        lines.append("module purge")
    lines.extend(shell_line("module", "load", name) for name in job.site.modules)
    return tuple(lines)


@curry
def image(docker_source, job):
    """Lines that make sure the container image is there (nothing for the host runtime)."""
    lines = runtime_of(job).image(job, docker_source)
    return banner("container image") + tuple(lines) if lines else ()


def setup_script(job):
    """The recipe's own ``setup_script``, verbatim, in a subshell so it cannot end the job early.

    It runs on the node with the recipe's variables (with the kind's too on the host runtime),
    in a process of its own: the job's shell never gets them.
    """
    if not job.setup_script:
        return ()
    lines = list(banner("setup_script (from the recipe, verbatim)"))
    lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/setup.sh"'), job.setup_script))
    # "$BASH": the recipe's PATH may not lead to bash
    run = '"$BASH" "$ORCH_RUN_DIR/state/setup.sh"'
    if job.runtime == "host":
        run = shell_line(*in_environment(job, (Raw('"$BASH"'), Raw('"$ORCH_RUN_DIR/state/setup.sh"'))))
    elif job.environment:
        exports = " ".join("%s=%s" % (name, parts_word(found)) for name, found in recipe_pairs(job))
        run = "(export %s; %s)" % (exports, run)
    lines.append('%s || orch_fail "setup_script exited with status $?" 1' % run)
    return tuple(lines)
