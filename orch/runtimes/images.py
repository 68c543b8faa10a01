"""Where a job's images are, and what a job does when one is missing: the part every runtime shares."""
import hashlib
import re

from orch.quoting import Raw, assignment, word

__all__ = ("gpu_requested", "image_path", "build_suffix", "image_dir_line", "charliecloud_name", "missing_image",
           "site_argument", "bind_pairs", "source_id", "wanted_condition", "remember_source", "image_lines", "source_of")

GPU_GRES = re.compile(r"(?:^|,)gpu(?::|$)")


def gpu_requested(job):
    """True when the job asks SLURM for a GPU (``gres: gpu:1`` and the like).

    A ``gpu`` partition alone allocates no device, so it does not count.
    """
    return bool(job.resources.gres and GPU_GRES.search(job.resources.gres))


def image_dir_line(job):
    """``ORCH_IMAGE_DIR``: the environment's (``ORCH_IMAGE_DIR=...`` at submit time), else the site profile's."""
    return "ORCH_IMAGE_DIR=${ORCH_IMAGE_DIR:-%s}" % word(job.site.image_dir)


def source_of(job, docker_source):
    """The image source a job uses: the recipe's ``container.docker_source``, else its kind's."""
    return job.container.docker_source or docker_source


def image_path(job, source):
    """An Apptainer image file: ``container.image_path``, else ``container_image`` in the image directory, else
    one named after what it is made from (``redis+7-alpine.sif``), so that two recipes never share one made
    from different sources or build steps.

    A bare name is a word for the script, in ``$ORCH_IMAGE_DIR``; a path is the recipe's own.
    """
    if job.container.image_path:
        return job.container.image_path
    name = job.container_image or "%s%s.sif" % (charliecloud_name(source), build_suffix(job))
    if "/" in name:
        return name
    return "%s/%s" % ("$ORCH_IMAGE_DIR", name)


def build_digest(job):
    """A short hash of the recipe's ``build_commands`` (None without any)."""
    if not job.container.build_commands:
        return None
    return hashlib.sha256("\n".join(job.container.build_commands).encode("utf-8")).hexdigest()[:16]


def build_suffix(job):
    """What an image's default name gets when the recipe builds it: ``@`` and its build steps' hash."""
    digest = build_digest(job)
    return "@" + digest if digest else ""


def source_id(job, source, own_image=True):
    """What an image was made from: its source, and a hash of the recipe's ``build_commands`` when it was built.

    Kept beside the image (``IMAGE.source``), so that a recipe whose source or build steps changed
    gets its image made anew, not a stale one.
    """
    if own_image and job.container.build_commands:
        return "%s build:%s" % (source, build_digest(job))
    return source


def wanted_condition(test, variable, made_from, rebuild=False):
    """``if`` test: the image must be made: it is missing, or ``IMAGE.source`` says it was made from something else.

    ``rebuild``: ``force_rebuild``, which remakes it in the first task of a sweep (or the one job).
    """
    recorded = '"$(cat "$%s.source" 2>/dev/null)"' % variable
    if " build:" in made_from:
        # nobody else can have made the recipe's own build: without a .source, it is not this one
        stale = "[ %s != %s ]" % (recorded, word(made_from))
    else:
        # an image with no .source beside it (put there by hand, or by an admin) is taken as it is
        stale = '[ -f "$%s.source" ] && [ %s != %s ]' % (variable, recorded, word(made_from))
    condition = '[ ! %s "$%s" ] || { %s; }' % (test, variable, stale)
    if rebuild:
        condition += ' || [ "${SLURM_ARRAY_TASK_ID:-0}" = "${SLURM_ARRAY_TASK_MIN:-0}" ]'
    return condition


def image_lines(job, variable, location, source, made_from, test, fetch, rebuild=False):
    """The lines every runtime's image step has: where the image is, and, when it must be made, ``fetch``
    (lines that make it and put it in place) run by one job at a time, or a failure where the site
    lets no job fetch.

    A job that finds the image being made waits for the lock beside it, then finds it made.
    """
    condition = wanted_condition(test, variable, made_from, rebuild)
    lines = [image_dir_line(job), assignment(variable, location), "if %s; then" % condition]
    if job.site.pull != "missing":
        lines.append(missing_image(job, source, variable))
    else:
        lines.extend((
            '    mkdir -p "$(dirname "$%s")" || orch_fail "cannot make the directory of image $%s" 1' % (variable, variable),
            # one job makes it; the others wait here, then find it made
            '    exec 9>>"$%s.lock" && flock 9 || orch_fail "cannot lock $%s.lock" 1' % (variable, variable),
            "    if %s; then" % condition,
        ))
        lines.extend("        " + line for line in fetch)
        lines.extend(("        " + remember_source(variable, made_from), "    fi", "    exec 9>&-"))
    lines.append("fi")
    return tuple(lines)


def remember_source(variable, made_from):
    """The line that records, beside the image just made, what it was made from."""
    return "printf '%%s\\n' %s > \"$%s.source\"" % (word(made_from), variable)


def charliecloud_name(source):
    """The directory name Charliecloud's ``ch-image`` gives an image reference (``/`` -> ``%``, ``:`` -> ``+``).

    >>> charliecloud_name("docker://quay.io/prometheus/node-exporter:v1.8.2")
    'quay.io%prometheus%node-exporter+v1.8.2'
    """
    reference = source.split("://", 1)[1] if "://" in source else source
    return reference.replace("/", "%").replace(":", "+")


def missing_image(job, source, variable="ORCH_IMAGE"):
    """The line that fails a job whose image in ``$variable`` must be made where its site lets no job fetch one,
    naming the image, its source, and the command that prepares it on the login node."""
    rest = (" (%s) is missing or was made from another source, and site %s lets no job fetch an image (pull: never): "
            "prepare it on the login node with orch pull RECIPE --site %s --runtime %s"
            % (source, job.site.name, site_argument(job.site), job.runtime))
    return '    orch_fail "image $%s"%s 1' % (variable, word(rest))


def site_argument(site):
    """What ``--site`` takes to find this profile again: its file, or the name of a shipped one."""
    return site.source if site.source and not site.source.startswith("orch/sites/") else site.name


def bind_pairs(job, binds=()):
    """``(source, destination, options)`` of every mount: the run directory, then ``bind_mounts``, then ``binds``.

    ``bind_mounts`` entries are Apptainer's ``src[:dst[:opts]]``.
    """
    pairs = [(Raw('"$ORCH_RUN_DIR"'), Raw('"$ORCH_RUN_DIR"'), None)]
    for mount in job.container.bind_mounts:
        parts = mount.split(":")
        source = parts[0]
        destination = parts[1] if len(parts) > 1 and parts[1] else source
        pairs.append((source, destination, parts[2] if len(parts) > 2 else None))
    pairs.extend((b, b, None) for b in binds)
    return tuple(pairs)
