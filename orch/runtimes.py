"""Runtimes: how a command runs on the node (in an Apptainer image, or from PATH).

A runtime is a record of three functions of the job:
``image(job)`` lines that make sure the image exists, ``wrap(job, words)``
the words that run a command in it, and ``export(name, value)`` the line
that hands an environment variable to what runs inside.
"""
import re

from pyrsistent import PClass, field

from orch.quoting import Raw, assignment, heredoc, shell_line, word

__all__ = ("Runtime", "RUNTIMES", "APPTAINER", "HOST", "gpu_requested", "image_path", "runtime_of")

GPU_GRES = re.compile(r"(?:^|,)gpu(?::|$)")


class Runtime(PClass):
    name = field(type=str, mandatory=True)
    image = field(mandatory=True)
    wrap = field(mandatory=True)
    export = field(mandatory=True)


def gpu_requested(job):
    """True when the job asks SLURM for a GPU (``gres: gpu:1`` and the like).

    A ``gpu`` partition alone allocates no device, so it does not count.
    """
    return bool(job.resources.gres and GPU_GRES.search(job.resources.gres))


def image_path(job, default_name=None):
    """The image file: ``container.image_path``, else ``container_image`` in the site's container directory."""
    if job.container.image_path:
        return job.container.image_path
    name = job.container_image or default_name or "%s.sif" % job.kind
    if "/" in name:
        return name
    return "%s/%s" % (job.site.container_dir, name)


def _definition_file(source, build_commands):
    image = source.split("://", 1)[1] if "://" in source else source
    lines = ["Bootstrap: docker", "From: %s" % image, "", "%post"]
    lines.extend("    " + command for command in build_commands)
    return "\n".join(lines) + "\n"


def apptainer_image(job, docker_source, image_file_word=Raw('"$ORCH_IMAGE"')):
    """Lines that pull (or build, with ``build_commands``) the image when it is missing."""
    source = job.container.docker_source or docker_source
    lines = [assignment("ORCH_IMAGE", image_path(job))]
    condition = 'if [ ! -f "$ORCH_IMAGE" ]; then' if not job.container.force_rebuild else "if true; then"
    lines.append(condition)
    lines.append('    mkdir -p "$(dirname "$ORCH_IMAGE")"')
    if job.container.build_commands:
        lines.append('    ORCH_DEF="$ORCH_RUN_DIR/state/image.def"')
        # heredoc bodies and markers stay at column 0: indenting them would change the file
        lines.extend(heredoc(Raw('"$ORCH_DEF"'), _definition_file(source, job.container.build_commands)))
        lines.append(
            '    orch_log "building $ORCH_IMAGE"; apptainer build --force "$ORCH_IMAGE" "$ORCH_DEF" '
            '|| orch_fail "apptainer build of $ORCH_IMAGE failed" 1'
        )
    else:
        lines.append(
            "    orch_log %s; %s || orch_fail %s 1"
            % (
                word("pulling " + source),
                shell_line("apptainer", "pull", "--force", Raw('"$ORCH_IMAGE"'), source),
                word("apptainer pull of " + source + " failed"),
            )
        )
    lines.append("fi")
    return tuple(lines)


def apptainer_wrap(job, words, image=Raw('"$ORCH_IMAGE"')):
    prefix = ["apptainer", "exec"]
    if gpu_requested(job):
        prefix.append("--nv")
    prefix.extend(["--bind", Raw('"$ORCH_RUN_DIR"')])
    for mount in job.container.bind_mounts:
        prefix.extend(["--bind", mount])
    return tuple(prefix) + (image,) + tuple(words)


def apptainer_export(name, value):
    # --env splits its argument at commas; APPTAINERENV_* carries any value intact. The plain
    # shell variable (not exported) lets later values and args say ${NAME}, as on the host.
    return '%s; export APPTAINERENV_%s="$%s"' % (assignment(name, value), name, name)


def host_image(job, docker_source):
    return ()


def host_wrap(job, words):
    return tuple(words)


def host_export(name, value):
    return assignment(name, value, export=True)


APPTAINER = Runtime(name="apptainer", image=apptainer_image, wrap=apptainer_wrap, export=apptainer_export)
HOST = Runtime(name="host", image=host_image, wrap=host_wrap, export=host_export)
RUNTIMES = {runtime.name: runtime for runtime in (APPTAINER, HOST)}


def runtime_of(job):
    return RUNTIMES[job.runtime]
