"""The host runtime: programs from the node's PATH, no image."""
from orch.runtimes.record import Runtime

__all__ = ("HOST", "PLAIN_ENVIRONMENT")

# each ORCH_ENV_<NAME> becomes NAME, exported, for the command alone
PLAIN_ENVIRONMENT = 'for orch_v in "${!ORCH_ENV_@}"; do export "${orch_v#ORCH_ENV_}=${!orch_v}"; unset "$orch_v"; done; exec "$@"'


def image(job, docker_source, sidecar=None):
    return ()


def wrap(job, words, image=None, binds=(), gpu=None):
    return tuple(words)


HOST = Runtime(name="host", image=image, wrap=wrap, environment=PLAIN_ENVIRONMENT)
