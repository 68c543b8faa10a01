"""Ollama: ``ollama serve``, then the recipe's model pulled and loaded before the endpoint is published."""
from orch import schema
from orch.kinds.common import command_or, local_url, setting
from orch.kinds.service import service_kind
from orch.quoting import Raw, shell_line, word
from orch.runtimes.images import site_argument
from orch.sections import banner, in_environment, service_port

__all__ = ("KIND",)

PORT = 11434
SOURCE = "docker://ollama/ollama:latest"


def command(job):
    return command_or(job, "ollama", ("serve",))


def environment(job):
    return (("OLLAMA_HOST", Raw('"$ORCH_BIND":%d' % service_port(job, PORT))),)


def warm_request(model, gpu_layers):
    """The /api/generate body that loads ``model`` (names are validated, so no escaping is needed)."""
    options = ', "options": {"num_gpu": %d}' % gpu_layers if gpu_layers is not None else ""
    return '{"model": "%s", "prompt": "", "stream": false%s}' % (model, options)


def model_ready(job):
    """The recipe's model, pulled unless the model directory has it, and loaded once, so clients never time the download.

    On a site that lets no job fetch (``pull: never``) a missing model fails the job at once,
    naming the command that puts it there from the login node (``orch pull``).
    """
    model = setting(job, "model")
    if not model:
        return ()
    # in the job's environment: ollama's client finds the server through OLLAMA_HOST
    show = shell_line(*in_environment(job, ("ollama", "show", model))) + " >/dev/null 2>&1"
    if job.site.pull == "never":
        fetch = "orch_fail %s 1" % word("model %s is not in the model directory, and site %s lets no job fetch (pull: never): "
                                        "pull it on the login node with orch pull RECIPE --site %s --runtime %s"
                                        % (model, job.site.name, site_argument(job.site), job.runtime))
    else:
        fetch = "{ orch_log %s; %s || orch_fail %s 1; }" % (
            word("pulling model " + model), shell_line(*in_environment(job, ("ollama", "pull", model))),
            word("ollama pull %s failed" % model))
    url = local_url(service_port(job, PORT), "/api/generate")
    load = ("curl", "-fsS", "-o", "/dev/null", "--max-time", "900", "-H", "Content-Type: application/json",
            "-d", warm_request(model, setting(job, "gpu_layers")), url)
    return banner("model") + (
        "%s || %s" % (show, fetch),
        "%s || orch_fail %s 1" % (shell_line(*load), word("loading model %s failed" % model)),
    )


KIND = service_kind(
    "ollama",
    "Ollama LLM server (ollama serve; model pulled and loaded before clients start; --nv with a GPU)",
    fields={
        "model": schema.Text(pattern=r"[A-Za-z0-9][A-Za-z0-9._:/-]*", hint="an Ollama model name (e.g. llama3.2:1b)"),
        "gpu_layers": schema.Integer(0, 100000),
    },
    port=PORT,
    docker_source=SOURCE,
    health_path="/api/tags",
    command=command,
    ready=(model_ready,),
    env=environment,
)
