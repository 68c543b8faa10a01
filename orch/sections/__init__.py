"""Section functions: ``Job -> tuple of lines``; a script is their concatenation.

Generic sections take only the job. Sections that need a kind's own piece
(its command, its probe) are curried: ``start(command)`` is a section.
``service_sections(...)`` and ``client_sections(...)`` assemble the standard
lists that the built-in kinds use and that a custom service can use too.

One module per part of a script:

- ``header``: ``#!/bin/bash`` and the ``#SBATCH`` directives
- ``preamble``: the run's variables, orch's helpers (``helpers.sh``), the teardown trap
- ``environment``: the kind's and the recipe's variables, for what runs for the recipe (``in_environment``)
- ``prepare``: modules, container image, the recipe's setup_script
- ``service``: start, readiness, endpoint, wait; ``probes``: the readiness checks (``any_of`` several)
- ``client``: the target's endpoint and readiness, the sweep point, the load
- ``monitoring``: node_exporter and cAdvisor sidecars, scrape targets, progress gauges
- ``conductor``: the experiment's closing job (metrics, then the services stopped)
"""
from toolz import curry

from orch.sections.client import await_endpoint, benchmark, driver_check, endpoint_reads, sweep_cases, wait_for_target
from orch.sections.header import header, resource_values
from orch.sections.lines import banner, render
from orch.sections.monitoring import sidecars
from orch.sections.preamble import preamble
from orch.sections.environment import environment, environment_with, in_environment, recipe_word
from orch.sections.prepare import image, modules, setup_script, setup_script_with
from orch.sections.probes import any_of, http_probe, probe_function, tcp_probe
from orch.sections.service import health, publish, service_port, start, wait_service

__all__ = (
    "render",
    "banner",
    "header",
    "preamble",
    "modules",
    "environment",
    "environment_with",
    "in_environment",
    "recipe_word",
    "image",
    "setup_script",
    "setup_script_with",
    "start",
    "sidecars",
    "health",
    "publish",
    "wait_service",
    "wait_for_target",
    "benchmark",
    "service_sections",
    "client_sections",
    "http_probe",
    "tcp_probe",
    "any_of",
    "probe_function",
    "service_port",
    "resource_values",
    "endpoint_reads",
    "await_endpoint",
    "sweep_cases",
)


def service_sections(command, probe, port, docker_source, setup=(), ready=(), env=None):
    """The standard list of sections of a service kind.

    + command: ``job -> words`` that run the service
    + probe: ``job -> words`` that succeed once it is ready (or ``any_of`` several, each bounded on its own)
    + port: ``job -> int``, the port clients are told
    + docker_source: the image to pull when the recipe names none
    + setup: sections run before the start (config files, data directories)
    + ready: sections run after the readiness check, before the endpoint is published
    + env: ``job -> pairs`` of default environment variables
    """
    return (
        (header, preamble, modules, environment_with(env) if env else environment, image(docker_source))
        + tuple(setup)
        + (setup_script_with(env), start(command), sidecars, health(probe))
        + tuple(ready)
        + (publish(port), wait_service)
    )


def client_sections(program, arguments, docker_source, env=None, output=("--output",), driver=None):
    """The standard list of sections of a client kind (see ``benchmark``); ``env`` as for ``service_sections``.

    + driver: the module of orch's own load generator ``program`` runs (``orch.clients.<kind>``), checked
      first and run on the node outside the image; ``docker_source`` is then the image of its native
      tool (None: it has none, and the job needs no image unless the recipe runs its own ``command``)
    """
    return (
        header,
        preamble,
        modules,
        environment_with(env) if env else environment,
    ) + ((driver_check(driver),) if driver else ()) + (
        client_image(docker_source),
        setup_script_with(env),
        sidecars,
        wait_for_target,
        benchmark(program, arguments, output=output, driver=driver is not None, tool_image=docker_source is not None),
    )


# what a recipe's own command runs in when its kind names no image
COMMAND_IMAGE = "docker://python:3.11-slim"


@curry
def client_image(docker_source, job):
    """A client's image: its native tool's, or the one its recipe's own ``command`` runs in; none for a Python-only client."""
    if docker_source is None and not job.command:
        return ()
    return image(docker_source or COMMAND_IMAGE, job)
