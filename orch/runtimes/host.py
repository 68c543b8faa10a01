"""The host runtime: programs from the node's PATH, no image."""
from orch.quoting import assignment
from orch.runtimes.record import Runtime

__all__ = ("HOST",)


def image(job, docker_source, sidecar=None):
    return ()


def wrap(job, words, image=None, binds=(), gpu=None):
    return tuple(words)


def export(name, value):
    return assignment(name, value, export=True)


HOST = Runtime(name="host", image=image, wrap=wrap, export=export)
