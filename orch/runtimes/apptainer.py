"""Apptainer: SIF image files, ``apptainer exec``, ``APPTAINERENV_*`` for the environment."""
from orch.quoting import Raw, heredoc, shell_line, word
from orch.runtimes.images import bind_pairs, gpu_requested, image_lines, image_path, source_id, source_of
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


def image(job, docker_source, sidecar=None):
    """Lines that set ``$ORCH_IMAGE`` (or a sidecar's ``(variable, file name)``) to the SIF file, and pull it
    (or build it, with ``build_commands``) when it is missing or was made from another source.

    It is made under a name of its own and renamed into place: a job already running the old file
    keeps it, and nobody ever runs a half-written one.
    """
    variable, file_name = sidecar or ("ORCH_IMAGE", None)
    # a sidecar's image is its own, whatever the recipe says of the job's
    source = docker_source if sidecar else source_of(job, docker_source)
    made_from = source_id(job, source, own_image=not sidecar)
    location = "$ORCH_IMAGE_DIR/" + file_name if sidecar else image_path(job, source)
    written = ()
    if job.container.build_commands and not sidecar:
        # written first, outside the (indented) steps: a heredoc's body and marker stay at column 0
        written = ('ORCH_DEF="$ORCH_RUN_DIR/state/image.def"',) + tuple(
            heredoc(Raw('"$ORCH_DEF"'), definition_file(source, job.container.build_commands)))
        fetch = ['orch_log "building $%s"' % variable]
        make = shell_line("apptainer", "build", "--force", Raw('"$ORCH_NEW"'), Raw('"$ORCH_DEF"'))
    else:
        fetch = ["orch_log %s" % word("pulling " + source)]
        make = shell_line("apptainer", "pull", "--force", Raw('"$ORCH_NEW"'), source)
    fetch.append('ORCH_NEW=$(mktemp "$%s.XXXXXX.tmp") && %s && mv -f "$ORCH_NEW" "$%s" || { rm -f "$ORCH_NEW"; orch_fail %s 1; }'
                 % (variable, make, variable, word("apptainer could not make the image from " + source)))
    rebuild = job.container.force_rebuild and not sidecar
    return written + image_lines(job, variable, location, source, made_from, "-f", fetch, rebuild)


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


# --env splits its argument at commas; APPTAINERENV_<NAME> carries any value intact, and Apptainer makes it the
# container's NAME (HOME and PATH too, which it would not take from the host's environment). The variables orch
# takes literally (credentials, the kind's own settings; their names in ORCH_PLAIN_ENV) also go by their own name
# to what runs on the node: orch's load generator reads them there.
ENVIRONMENT = ('for orch_v in "${!ORCH_ENV_@}"; do orch_n=${orch_v#ORCH_ENV_}; export "APPTAINERENV_$orch_n=${!orch_v}"; '
               'case " ${ORCH_PLAIN_ENV-} " in *" $orch_n "*) export "$orch_n=${!orch_v}" ;; esac; unset "$orch_v"; done; '
               'unset ORCH_PLAIN_ENV; exec "$@"')

APPTAINER = Runtime(name="apptainer", image=image, wrap=wrap, environment=ENVIRONMENT)
