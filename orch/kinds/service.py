"""A service kind from its values, each given once: port, image, command, probe or health path."""
from orch.kinds import Kind
from orch.kinds.common import probe_http
from orch.kinds.health import health_url
from orch.sections import service_port, service_sections

__all__ = ("service_kind", "http_health_probe")


def http_health_probe(port, path):
    """``job -> words``: the recipe's ``health_check.endpoint`` (``orch.kinds.health``), else ``path`` on this node, answering 2xx."""

    def probe(job):
        return probe_http(health_url(job, service_port(job, port), path))

    return probe


def service_kind(name, summary, *, port, docker_source, command, probe=None, health_path=None, fields=None,
                 env_fields=None, setup=(), ready=(), env=None, endpoint_schemes=(), arg_options=None, init_script=False,
                 binds=None, programs=()):
    """The ``Kind`` of a service and its standard sections (``orch.sections.service_sections``).

    + port: the port it listens on unless the recipe's ``ports`` says otherwise
    + probe: ``job -> words`` that succeed once it is ready; default: ``health_path`` over HTTP
    + setup / ready / env: as ``service_sections`` takes them
    + endpoint_schemes: for a kind checked with its own client, the URL schemes that name it (``redis``)
    + arg_options: field -> the options of the program that set the same (see ``Kind.arg_options``)
    + programs: the names of its program (``redis-server``): args given to one of them get orch's flags after them
    + init_script: whether the kind runs the recipe's ``init_script``
    + binds: ``settings -> bind mounts`` its fields need in the container
    """
    if probe is None:
        if health_path is None:
            raise ValueError("service kind %s: give a probe or a health_path" % name)
        probe = http_health_probe(port, health_path)
    return Kind(
        name=name,
        role="service",
        summary=summary,
        fields=fields or {},
        env_fields=env_fields or {},
        arg_options={field: tuple(options) for field, options in (arg_options or {}).items()},
        init_script=init_script,
        programs=tuple(programs),
        binds=binds or (lambda settings: ()),
        port=port,
        docker_source=docker_source,
        health_path=health_path,
        endpoint_schemes=tuple(endpoint_schemes),
        sections=service_sections(
            command=command,
            probe=probe,
            port=lambda job: service_port(job, port),
            docker_source=docker_source,
            setup=tuple(setup),
            ready=tuple(ready),
            env=env,
        ),
    )
