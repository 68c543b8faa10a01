"""Apptainer: SIF image files, ``apptainer exec``, ``APPTAINERENV_*`` for the environment."""
from orch.quoting import Raw, assignment, heredoc, shell_line, word
from orch.runtimes.images import (bind_pairs, gpu_requested, image_dir_line, image_path, missing_image, remember_source,
                                  source_id, source_of, wanted_condition)
from orch.runtimes.record import Runtime

__all__ = ("APPTAINER", "definition_file")


def definition_file(source, build_commands):
    """An Apptainer definition file: the source image, then the recipe's ``build_commands``.

    The source's scheme picks the bootstrap agent (``docker://`` Docker, ``library://`` the library,
    ``oras://`` an OCI registry, ``localimage://``/a path a SIF on disk).
    """
    scheme, _, rest = source.partition("://") if "://" in source else ("", "", source)
    bootstrap = {"docker": "docker", "library": "library", "oras": "oras", "localimage": "localimage", "": "localimage"}.get(scheme, "docker")
    lines = ["Bootstrap: %s" % bootstrap, "From: %s" % rest, "", "%post"]
    lines.extend("    " + command for command in build_commands)
    return "\n".join(lines) + "\n"


def image(job, docker_source, variable="ORCH_IMAGE", file_name=None):
    """Lines that set ``$variable`` to the SIF file and pull (or build, with ``build_commands``) it when it is
    missing or was made from another source (``IMAGE.source``).

    It is made beside its final name and renamed, so that two jobs (or two array tasks) that
    need it at once never run a half-written image.
    """
    own = variable == "ORCH_IMAGE"
    # a sidecar's image is its own, whatever the recipe says of the job's
    source = source_of(job, docker_source) if own else docker_source
    made_from = source_id(job, source, own)
    path = image_path(job, file_name) if own else "$ORCH_IMAGE_DIR/" + file_name
    lines = [image_dir_line(job), assignment(variable, path)]
    target = Raw('"$%s.$$.tmp"' % variable)
    if job.container.build_commands and own:
        fetch = ['    ORCH_DEF="$ORCH_RUN_DIR/state/image.def"']
        # heredoc bodies and markers stay at column 0: indenting them would change the file
        fetch.extend(heredoc(Raw('"$ORCH_DEF"'), definition_file(source, job.container.build_commands)))
        fetch.append('    orch_log "building $%s"' % variable)
        command = shell_line("apptainer", "build", "--force", target, Raw('"$ORCH_DEF"'))
    else:
        fetch = ["    orch_log %s" % word("pulling " + source)]
        command = shell_line("apptainer", "pull", "--force", target, source)
    fetch.append('    mkdir -p "$(dirname "$%s")" && %s && mv -f %s "$%s" || { rm -f %s; orch_fail %s 1; }'
                 % (variable, command, target, variable, target, word("apptainer could not make the image from " + source)))
    fetch.append(remember_source(variable, made_from))
    # a sweep rebuilds once, in its first task; the others run the image there is (the rename is atomic).
    # A site that lets no job fetch images refuses force_rebuild when the recipe is loaded.
    condition = wanted_condition("-f", variable, made_from)
    if job.container.force_rebuild and own and job.site.pull == "missing":
        condition += ' || [ "${SLURM_ARRAY_TASK_ID:-0}" = "${SLURM_ARRAY_TASK_MIN:-0}" ]'
    lines.append("if %s; then" % condition)
    lines.extend(missing_image(job, source, fetch, variable))
    lines.append("fi")
    return tuple(lines)


def wrap(job, words, image=Raw('"$ORCH_IMAGE"'), binds=(), gpu=None):
    prefix = ["apptainer", "exec"]
    if gpu_requested(job) if gpu is None else gpu:
        prefix.append("--nv")
    for source, destination, options in bind_pairs(job, binds):
        if source == destination and options is None:
            prefix.extend(["--bind", source])
        else:
            prefix.extend(["--bind", ":".join(p for p in (source, destination, options) if p)])
    return tuple(prefix) + (image,) + tuple(words)


def export(name, value):
    # --env splits its argument at commas; APPTAINERENV_* carries any value intact. The plain
    # shell variable (not exported) lets later values and args say ${NAME}, as on the host.
    return '%s; export APPTAINERENV_%s="$%s"' % (assignment(name, value), name, name)


APPTAINER = Runtime(name="apptainer", image=image, wrap=wrap, export=export)
