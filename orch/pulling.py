"""``orch pull``: the script that prepares, on the login node, every image (and Ollama model) some jobs will use.

It is made of the very lines the jobs run (``runtime.image``), with the site's pull policy set
to ``missing``: an image lands where the jobs look for it, named as they name it, with the
``.source`` they check; what is there and made from the same source is left alone.
"""
from orch.kinds import KINDS
from orch.quoting import assignment, shell_line, word
from orch.runtimes import runtime_of
from orch.sections import COMMAND_IMAGE
from orch.sections.prepare import modules
from orch.runtimes.images import source_of
from orch.sections.monitoring import CADVISOR_IMAGE, CADVISOR_SOURCE, NODE_EXPORTER_IMAGE, NODE_EXPORTER_SOURCE

__all__ = ("images_of", "models_of", "pull_script")

PRELUDE = (
    "#!/bin/bash",
    "# orch pull: images (and models) for the jobs below, made where those jobs look for them",
    "set -uo pipefail",
    'orch_log() { printf "orch pull: %s\\n" "$*" >&2; }',
    'orch_fail() { printf "orch pull: FAILED: %s\\n" "$1" >&2; exit "${2:-1}"; }',
    'ORCH_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/orch-pull.XXXXXX")" || exit 1',
    'mkdir -p "$ORCH_RUN_DIR/state"',
    'trap \'rm -rf "$ORCH_RUN_DIR"\' EXIT',
)


# a batch job gets `module` from the environment sbatch passes on; a script run by orch may need to define it
MODULE_INIT = (
    "if ! type module >/dev/null 2>&1; then",
    "    for orch_init in /etc/profile.d/lmod.sh /etc/profile.d/z00_lmod.sh /etc/profile.d/modules.sh /usr/share/lmod/lmod/init/bash; do",
    '        if [ -f "$orch_init" ]; then . "$orch_init"; break; fi',
    "    done",
    "fi",
)


def images_of(job, kinds=None):
    """``(source, sidecar)`` of each image the job's script makes sure of, its own first (``sidecar`` None).

    The same choice the sections make: a service runs in its kind's image; a client in its native
    tool's, or in the one its recipe's ``command`` runs in, or in none (a Python-only client);
    then the sidecars' images.
    """
    if job.runtime == "host":
        return ()
    kind = (kinds or KINDS)[job.kind]
    own = kind.docker_source
    if job.role == "client" and own is None and job.command:
        own = COMMAND_IMAGE
    found = [(own, None)] if own or job.role == "service" else []
    if job.node_exporter:
        found.append((NODE_EXPORTER_SOURCE, NODE_EXPORTER_IMAGE))
    if job.cadvisor:
        found.append((CADVISOR_SOURCE, CADVISOR_IMAGE))
    return tuple(found)


def models_of(job):
    """The Ollama models a service job pulls when it starts."""
    model = job.settings.get("model") if job.kind == "ollama" else None
    return (model,) if model else ()


def as_pull_prepares_it(job, force):
    """The job as ``orch pull`` prepares for it, on the login node: its site lets it fetch, ``force`` remakes its
    own image, and no GPU is asked for (the login node has none to hand to an image)."""
    job = job.set(site=job.site.set(pull="missing"), resources=job.resources.set(gres=None))
    return job.set(container=job.container.set(force_rebuild=True)) if force else job


def _model_lines(job, model, python, kinds):
    """In a subshell of its own: ``ollama serve`` in the job's image on a loopback port of the kernel's choosing,
    the model pulled into the model directory the service uses, then the server stopped; its log shown if it fails."""
    wrap = runtime_of(job).wrap
    environment = dict(job.environment)
    lines = ["(", "orch_log %s" % word("pulling model %s for %s" % (model, job.name))]
    lines.extend(runtime_of(job).image(job, (kinds or KINDS)[job.kind].docker_source))  # its image, found again
    lines.extend((
        "ORCH_OLLAMA_PORT=$(%s -c %s)" % (word(python), word("import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")),
        'export OLLAMA_HOST="127.0.0.1:$ORCH_OLLAMA_PORT"',
    ))
    if "OLLAMA_MODELS" in environment:
        lines.append(assignment("OLLAMA_MODELS", environment["OLLAMA_MODELS"], export=True))
    log = '"$ORCH_RUN_DIR/ollama-%s.log"' % model.replace("/", "_").replace(":", "_")
    lines.append("%s >%s 2>&1 &" % (shell_line(*wrap(job, ("ollama", "serve"), gpu=False)), log))
    lines.extend((
        "ORCH_OLLAMA_PID=$!",
        'orch_ollama_failed() { kill "$ORCH_OLLAMA_PID" 2>/dev/null; cat %s >&2; orch_fail "$1" 1; }' % log,
        "orch_up=",
        'for _ in $(seq 240); do curl -fsS -o /dev/null "http://$OLLAMA_HOST/api/tags" 2>/dev/null && { orch_up=1; break; }; sleep 0.5; done',
        '[ -n "$orch_up" ] || orch_ollama_failed %s' % word("ollama serve did not answer within 120 s (its log is above)"),
        "%s || orch_ollama_failed %s" % (shell_line(*wrap(job, ("ollama", "pull", model), gpu=False)),
                                         word("ollama pull %s failed (the server's log is above)" % model)),
        'kill "$ORCH_OLLAMA_PID"; wait "$ORCH_OLLAMA_PID" 2>/dev/null || true',
        ") || exit 1",
    ))
    return tuple(lines)


def pull_script(jobs, kinds=None, force=False, python="python3"):
    """The bash script that prepares every image and model of ``jobs`` (each once), with its progress on stderr.

    + force: make each job's own image anew, even when it is there
    + python: an interpreter on the login node (it picks a free port for a model's temporary server)
    """
    lines = list(PRELUDE)
    modules_loaded, images_made, models_pulled = set(), set(), set()
    for job in jobs:
        job = as_pull_prepares_it(job, force)
        runtime = runtime_of(job)
        # the site's modules for the runtime (Apptainer on MeluXina), once per runtime
        if job.runtime not in modules_loaded and modules(job):
            modules_loaded.add(job.runtime)
            lines.extend(MODULE_INIT + tuple(line for line in modules(job) if not line.startswith("#")))
        for source, sidecar in images_of(job, kinds):
            block = runtime.image(job, source, sidecar=sidecar)
            if block and block not in images_made:
                images_made.add(block)
                variable = sidecar[0] if sidecar else "ORCH_IMAGE"
                lines.append("orch_log %s" % word("%s: %s" % (job.name, source)))
                lines.extend(block)
                lines.append('orch_log "ready: $%s"' % variable)
        for model in models_of(job):
            key = (runtime.image(job, source_of(job, (kinds or KINDS)[job.kind].docker_source)), dict(job.environment).get("OLLAMA_MODELS"), model)
            if key not in models_pulled:
                models_pulled.add(key)
                lines.extend(_model_lines(job, model, python, kinds))
    lines.append('orch_log "done"')
    return "\n".join(lines) + "\n"
