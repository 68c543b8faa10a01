"""Chroma: ``chroma run`` with its data in the run directory (or the recipe's persist_directory)."""
from orch import schema
from orch.kinds.common import command_with, local_url, probe_http, setting
from orch.kinds.service import service_kind
from orch.quoting import Raw, word
from orch.sections import banner, service_port

__all__ = ("KIND",)

# the server itself, as a recipe\'s command may name it: args given to it get orch\'s flags after them
PROGRAMS = ("chroma",)

PORT = 8000
SOURCE = "docker://chromadb/chroma:latest"
HEARTBEAT = "/api/v2/heartbeat"


def data_dir(job):
    return setting(job, "persist_directory") or Raw('"$ORCH_RUN_DIR/chroma-data"')


def setup(job):
    return banner("chroma data") + ("mkdir -p %s" % word(data_dir(job)),)


def command(job):
    port = service_port(job, PORT)
    appended = []
    if setting(job, "persist_directory"):
        appended.append(("--path", ("--path", data_dir(job))))
    if job.ports:
        appended.append(("--port", ("--port", str(port))))
    return command_with(
        job, "chroma", ("run", "--host", Raw('"$ORCH_BIND"'), "--port", str(port), "--path", data_dir(job)), appended, PROGRAMS
    )


def recipe_path(job):
    """The path of the recipe's ``health_check.endpoint`` (a URL or a path), or None.

    >>> from types import SimpleNamespace as N
    >>> recipe_path(N(health=N(endpoint="http://localhost:8000/api/v1/heartbeat")))
    '/api/v1/heartbeat'
    >>> recipe_path(N(health=N(endpoint=None))) is None
    True
    """
    endpoint = job.health.endpoint
    if not endpoint:
        return None
    if "://" in endpoint:
        rest = endpoint.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else None
    return endpoint if endpoint.startswith("/") else None


def probe(job):
    # The seed's recipes name the v1 heartbeat, which Chroma 1.x no longer serves: try the v2 one
    # and the recipe's path. Both on this service's own address: a host:port written in the recipe
    # (http://localhost:8000/..., copied along when only `ports` changed) could be another Chroma's.
    port = service_port(job, PORT)
    urls = [local_url(port, HEARTBEAT)]
    path = recipe_path(job)
    if path and path != HEARTBEAT:
        urls.append(local_url(port, path))
    return probe_http(*urls)


KIND = service_kind(
    "chroma",
    "Chroma vector database (chroma run; data under the run directory)",
    fields={"persist_directory": schema.Text(allow_empty=False)},
    port=PORT,
    docker_source=SOURCE,
    health_path=HEARTBEAT,
    command=command,
    probe=probe,
    setup=(setup,),
    env=lambda job: (("ANONYMIZED_TELEMETRY", "false"),),
    arg_options={"persist_directory": ("--path",)},
    programs=PROGRAMS,
)
