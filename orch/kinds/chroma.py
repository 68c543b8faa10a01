"""Chroma: ``chroma run`` with its data in the run directory (or the recipe's persist_directory)."""
from orch import schema
from orch.kinds.common import command_with, probe_http, setting
from orch.kinds.health import endpoint_path, health_url
from orch.kinds.service import service_kind
from orch.quoting import Raw, word
from orch.sections import banner, service_port

__all__ = ("KIND",)

# the server itself, as a recipe\'s command may name it: args given to it get orch\'s flags after them
PROGRAMS = ("chroma",)

PORT = 8000
SOURCE = "docker://chromadb/chroma:latest"
HEARTBEAT = "/api/v2/heartbeat"
V1_HEARTBEAT = "/api/v1/heartbeat"


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


def probe(job):
    # health_check.endpoint as for every kind (orch.kinds.health). The seed's recipes name the v1
    # heartbeat, which Chroma 1.x no longer serves: the v2 one at the same place is asked first.
    port = service_port(job, PORT)
    endpoint = job.health.endpoint
    if endpoint and endpoint_path(endpoint) == V1_HEARTBEAT and endpoint.endswith(V1_HEARTBEAT):
        v2 = job.set(health=job.health.set(endpoint=endpoint[: -len(V1_HEARTBEAT)] + HEARTBEAT))
        return probe_http(health_url(v2, port, HEARTBEAT), health_url(job, port, HEARTBEAT))
    return probe_http(health_url(job, port, HEARTBEAT))


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
