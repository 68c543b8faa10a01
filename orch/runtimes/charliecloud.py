"""Charliecloud: directory images, ``ch-run``, the environment passed through as it is.

An image is a directory named as ``ch-image`` names it (``docker://redis:7-alpine`` ->
``redis+7-alpine``) in the image directory (``$ORCH_IMAGE_DIR``, else the site profile's), or
the recipe's ``image_path`` when that is not a SIF file. ``ch-run`` binds only onto directories
the image has, so the job makes its mount points in the image first (the image is its owner's
directory); a GPU is handed in with ``ch-fromhost --nvidia``, Charliecloud's way.
"""
from orch.quoting import Raw, assignment, heredoc, shell_line, word
from orch.runtimes.images import (bind_pairs, charliecloud_name, gpu_requested, image_dir_line, missing_image, remember_source,
                                  source_id, source_of, wanted_condition)
from orch.runtimes.record import Runtime

__all__ = ("CHARLIECLOUD", "image_location", "dockerfile")

SIF = (".sif", ".simg")


def image_location(job, docker_source, default_name=None):
    """The image directory's path for the script: the recipe's own (not a SIF), else named after its source."""
    if job.container.image_path and not job.container.image_path.endswith(SIF):
        return job.container.image_path
    if job.container_image and not job.container_image.endswith(SIF):
        name = job.container_image
        return name if "/" in name else "$ORCH_IMAGE_DIR/" + name
    source = source_of(job, docker_source)
    return "$ORCH_IMAGE_DIR/" + (charliecloud_name(source) if source else default_name or job.kind)


def dockerfile(reference, build_commands):
    """What ``ch-image build`` reads: the source image, then one RUN per ``build_commands`` line."""
    return "FROM %s\n" % reference + "".join("RUN %s\n" % command for command in build_commands)


def _fetch(job, source, variable):
    """Lines that import ``source`` into ``$variable`` with ``ch-image`` (pull, or build with ``build_commands``)."""
    scheme, _, reference = source.partition("://") if "://" in source else ("docker", "", source)
    if scheme != "docker":
        return ("    orch_fail %s 1" % word("charliecloud imports docker:// images only, not " + source),)
    target = Raw('"$%s.$$.tmp"' % variable)
    fail = "{ rm -rf %s; orch_fail %s 1; }" % (target, word("charliecloud could not make the image from " + source))
    if job.container.build_commands and variable == "ORCH_IMAGE":
        lines = ['    ORCH_DOCKERFILE="$ORCH_RUN_DIR/state/Dockerfile"']
        lines.extend(heredoc(Raw('"$ORCH_DOCKERFILE"'), dockerfile(reference, job.container.build_commands)))
        tag = "orch-%s" % job.job_name.lower()
        lines.append('    orch_log "building $%s"' % variable)
        make = "%s && %s" % (shell_line("ch-image", "build", "-t", tag, "-f", Raw('"$ORCH_DOCKERFILE"'), Raw('"$ORCH_RUN_DIR/state"')),
                             shell_line("ch-convert", "-i", "ch-image", tag, target))
    else:
        lines = ["    orch_log %s" % word("importing " + source)]
        make = "%s && %s" % (shell_line("ch-image", "pull", reference), shell_line("ch-convert", "-i", "ch-image", reference, target))
    # a stale image goes aside first (a job still running in it keeps it until it ends); when another job
    # installs the same image in between, its copy is as good as this one
    old = '"$%s.$$.old"' % variable
    install = ('{ [ ! -d "$%s" ] || mv -T "$%s" %s; } && { mv -T %s "$%s" 2>/dev/null || [ -d "$%s" ]; } && rm -rf --one-file-system %s %s'
               % (variable, variable, old, target, variable, variable, old, target))
    lines.append('    mkdir -p "$(dirname "$%s")" && %s && %s || %s' % (variable, make, install, fail))
    return tuple(lines)


def image(job, docker_source, variable="ORCH_IMAGE", file_name=None):
    """Lines that set ``$variable`` to the image directory, import it when missing or made from another source
    (if the site allows), and make its mount points."""
    own = variable == "ORCH_IMAGE"
    # a sidecar's image is its own, whatever the recipe says of the job's
    source = source_of(job, docker_source) if own else docker_source
    made_from = source_id(job, source, own)
    location = image_location(job, docker_source) if own else "$ORCH_IMAGE_DIR/" + charliecloud_name(source)
    lines = [image_dir_line(job), assignment(variable, location),
             # ch-run refuses to start without USER, which a batch job need not have
             'export USER="${USER:-$(id -un)}"']
    condition = wanted_condition("-d", variable, made_from)
    if job.container.force_rebuild and own and job.site.pull == "missing":
        condition += ' || [ "${SLURM_ARRAY_TASK_ID:-0}" = "${SLURM_ARRAY_TASK_MIN:-0}" ]'
    lines.append("if %s; then" % condition)
    lines.extend(missing_image(job, source, _fetch(job, source, variable) + (remember_source(variable, made_from),), variable))
    lines.append("fi")
    destinations = [destination for _, destination, _ in bind_pairs(job)]
    lines.append("for orch_dir in %s; do" % " ".join(word(d) for d in destinations))
    lines.append('    [ -d "$%s$orch_dir" ] || mkdir -p "$%s$orch_dir" || orch_fail "ch-run binds $orch_dir, which image $%s '
                 'lacks and this job cannot add: make the directory in the image" 1' % (variable, variable, variable))
    lines.append("done")
    if gpu_requested(job) and own:
        lines.append('ch-fromhost --nvidia "$%s" || orch_fail "ch-fromhost --nvidia could not give image $%s the GPU libraries" 1'
                     % (variable, variable))
    return tuple(lines)


def wrap(job, words, image=Raw('"$ORCH_IMAGE"'), binds=(), gpu=None):
    # the GPU's libraries are put into the image (``image``): ch-run needs no flag
    prefix = ["ch-run"]
    for source, destination, _ in bind_pairs(job, binds):
        prefix.extend(["-b", source if source == destination else "%s:%s" % (source, destination)])
    return tuple(prefix) + (image, "--") + tuple(words)


def export(name, value):
    # ch-run passes the whole environment through; the plain variable is also there for later ${NAME}
    return assignment(name, value, export=True)


CHARLIECLOUD = Runtime(name="charliecloud", image=image, wrap=wrap, export=export)
