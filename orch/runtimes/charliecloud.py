"""Charliecloud: directory images, ``ch-run``, the environment passed through as it is.

An image is a directory named as ``ch-image`` names it (``docker://redis:7-alpine`` ->
``redis+7-alpine``) in the image directory (``$ORCH_IMAGE_DIR``, else the site profile's), or
the recipe's ``image_path`` when that is not a SIF file. ``ch-run`` binds only onto directories
the image has, so the job makes its mount points in the image first (the image is its owner's
directory); a GPU is handed in with ``ch-fromhost --nvidia``, Charliecloud's way.
"""
from orch.quoting import Raw, heredoc, shell_line, word
from orch.runtimes.images import bind_pairs, build_suffix, charliecloud_name, gpu_requested, image_lines, source_id, source_of
from orch.runtimes.host import PLAIN_ENVIRONMENT
from orch.runtimes.record import Runtime

__all__ = ("CHARLIECLOUD", "image_location", "dockerfile")

SIF = (".sif", ".simg")


def image_location(job, docker_source):
    """The image directory's path for the script: the recipe's own (not a SIF), else named after what it is made
    from, so that two recipes never share one made from different sources or build steps."""
    if job.container.image_path and not job.container.image_path.endswith(SIF):
        return job.container.image_path
    if job.container_image and not job.container_image.endswith(SIF):
        name = job.container_image
        return name if "/" in name else "$ORCH_IMAGE_DIR/" + name
    source = source_of(job, docker_source)
    return "$ORCH_IMAGE_DIR/" + charliecloud_name(source) + build_suffix(job)


def dockerfile(reference, build_commands):
    """What ``ch-image build`` reads: the source image, then one RUN per ``build_commands`` entry
    (an entry of several lines continues with ``\\``, as one shell command, as Apptainer's ``%post`` runs it)."""
    return "FROM %s\n" % reference + "".join("RUN %s\n" % command.strip().replace("\n", " \\\n") for command in build_commands)


# ch-image keeps a lock on its storage: each job imports with storage of its own, removed afterwards
STORAGE = 'CH_IMAGE_STORAGE="$ORCH_RUN_DIR/state/ch-image"'


def _fetch(job, source, variable, sidecar):
    """Lines that import ``source`` with ``ch-image`` (pull, or build with ``build_commands``) into a new
    directory beside the image, then point ``$variable`` (a link) at it.

    The link is replaced in one rename, so a job already running in the old image keeps it whole;
    old directories stay until someone removes them (docs/recipes.md).
    """
    scheme, _, reference = source.partition("://") if "://" in source else ("docker", "", source)
    if scheme != "docker":
        return ("orch_fail %s 1" % word("charliecloud imports docker:// images only, not " + source),)
    if job.container.build_commands and not sidecar:
        tag = "orch-%s" % job.job_name.lower()
        lines = ['orch_log "building $%s"' % variable]
        make = "%s %s && %s %s" % (
            STORAGE, shell_line("ch-image", "build", "-t", tag, "-f", Raw('"$ORCH_RUN_DIR/state/Dockerfile"'), Raw('"$ORCH_RUN_DIR/state"')),
            STORAGE, shell_line("ch-convert", "-i", "ch-image", tag, Raw('"$ORCH_NEW/root"')))
    else:
        lines = ["orch_log %s" % word("importing " + source)]
        make = "%s %s && %s %s" % (STORAGE, shell_line("ch-image", "pull", reference),
                                   STORAGE, shell_line("ch-convert", "-i", "ch-image", reference, Raw('"$ORCH_NEW/root"')))
    # a directory image of old (not a link) goes aside first: a link cannot replace a directory
    aside = '{ [ -L "$%s" ] || [ ! -e "$%s" ] || mv -T "$%s" "$%s.v.${SLURM_JOB_ID:-$$}.old"; }' % ((variable,) * 4)
    link = 'ln -s "$(basename "$ORCH_NEW")/root" "$ORCH_NEW.link" && mv -T "$ORCH_NEW.link" "$%s"' % variable
    lines.append('ORCH_NEW=$(mktemp -d "$%s.v.XXXXXX") && %s && %s && %s || { rm -rf --one-file-system "$ORCH_NEW"; orch_fail %s 1; }'
                 % (variable, make, aside, link, word("charliecloud could not make the image from " + source)))
    lines.append('rm -rf --one-file-system "$ORCH_RUN_DIR/state/ch-image"')
    return tuple(lines)


def image(job, docker_source, sidecar=None):
    """Lines that set ``$ORCH_IMAGE`` (or a sidecar's ``(variable, file name)``) to the image directory, import it
    when missing or made from another source (where the site allows), and make the mount point of the run
    directory's top-level directory in it, once."""
    variable, _ = sidecar or ("ORCH_IMAGE", None)
    source = docker_source if sidecar else source_of(job, docker_source)
    made_from = source_id(job, source, own_image=not sidecar)
    location = "$ORCH_IMAGE_DIR/" + charliecloud_name(source) if sidecar else image_location(job, docker_source)
    written = ()
    if job.container.build_commands and not sidecar:
        # written first, outside the (indented) steps: a heredoc's body and marker stay at column 0
        written = tuple(heredoc(Raw('"$ORCH_RUN_DIR/state/Dockerfile"'), dockerfile(source.split("://", 1)[-1], job.container.build_commands)))
    rebuild = job.container.force_rebuild and not sidecar
    lines = list(written) + list(image_lines(job, variable, location, source, made_from, "-d", _fetch(job, source, variable, sidecar), rebuild))
    # ch-run binds only onto directories the image has: the run directory's top-level one (made once for
    # every run under it, not one per run) and the recipe's bind_mounts
    lines.append('orch_top="${ORCH_RUN_DIR#/}"; ORCH_RUN_TOP="/${orch_top%%/*}"')
    lines.append('export USER="${USER:-$(id -un)}"  # ch-run refuses to start without it, which a batch job need not have')
    destinations = [Raw('"$ORCH_RUN_TOP"')] + [d for _, d, _ in bind_pairs(job)[1:]]
    lines.append("for orch_dir in %s; do" % " ".join(word(d) for d in destinations))
    lines.append('    [ -d "$%s$orch_dir" ] || mkdir -p "$%s/.$orch_dir" || orch_fail "ch-run binds $orch_dir, which image $%s '
                 'lacks and this job cannot add: make the directory in the image" 1' % (variable, variable, variable))
    lines.append("done")
    if gpu_requested(job) and not sidecar:
        lines.append('ch-fromhost --nvidia "$%s" || orch_fail "ch-fromhost --nvidia could not give image $%s the GPU libraries" 1'
                     % (variable, variable))
    return tuple(lines)


def wrap(job, words, image=Raw('"$ORCH_IMAGE"'), binds=(), gpu=None):
    # the GPU's libraries are put into the image (``image``): ch-run needs no flag. The run directory
    # is reached through its top-level directory (``ORCH_RUN_TOP``, set by ``image``), at the same path
    prefix = ["ch-run", "-b", Raw('"$ORCH_RUN_TOP"')]
    for source, destination, _ in bind_pairs(job, binds)[1:]:
        prefix.extend(["-b", source if source == destination else "%s:%s" % (source, destination)])
    return tuple(prefix) + (image, "--") + tuple(words)


# ch-run passes the whole environment through: the variables go to it by their own names, as on the host
CHARLIECLOUD = Runtime(name="charliecloud", image=image, wrap=wrap, environment=PLAIN_ENVIRONMENT)
