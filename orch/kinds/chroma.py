"""Chroma: ``chroma run`` with its data in the run directory (or the recipe's persist_directory)."""
from orch import schema
from orch.kinds import Kind
from orch.kinds.common import command_or, health_url, local_url, probe_http, setting
from orch.quoting import Raw, word
from orch.sections import banner, service_port, service_sections

__all__ = ("KIND",)

PORT = 8000
SOURCE = "docker://chromadb/chroma:latest"
HEARTBEAT = "/api/v2/heartbeat"


def data_dir(job):
    return setting(job, "persist_directory") or Raw('"$ORCH_RUN_DIR/chroma-data"')


def setup(job):
    return banner("chroma data") + ("mkdir -p %s" % word(data_dir(job)),)


def command(job):
    port = service_port(job, PORT)
    return command_or(
        job, "chroma", ("run", "--host", Raw('"$ORCH_BIND"'), "--port", str(port), "--path", data_dir(job))
    )


def probe(job):
    # the seed's recipes name the v1 heartbeat, which Chroma 1.x no longer serves: try both
    port = service_port(job, PORT)
    urls = [local_url(port, HEARTBEAT)]
    recipe_url = health_url(job, port, HEARTBEAT)
    if isinstance(recipe_url, str) and not isinstance(recipe_url, Raw):
        urls.append(recipe_url)
    return probe_http(*urls)


KIND = Kind(
    name="chroma",
    role="service",
    summary="Chroma vector database (chroma run; data under the run directory)",
    fields={"persist_directory": schema.Text(allow_empty=False)},
    port=PORT,
    docker_source=SOURCE,
    health_path=HEARTBEAT,
    sections=service_sections(
        command=command,
        probe=probe,
        port=lambda job: service_port(job, PORT),
        docker_source=SOURCE,
        setup=(setup,),
        env=lambda job: (("ANONYMIZED_TELEMETRY", "false"),),
    ),
)
