"""Sweeps: a client parameter given several values runs once per combination.

The combinations become one SLURM job array; each array task takes its
combination by ``SLURM_ARRAY_TASK_ID``.
"""
from itertools import product

__all__ = ("Sweep", "swept", "combinations", "fixed")


class Sweep(tuple):
    """The values of one swept parameter (a plain tuple is one value that happens to be a list)."""

    __slots__ = ()


def swept(parameters):
    """``(name, values)`` of every parameter with more than one value, by name.

    >>> swept({"clients": Sweep((1, 10)), "pipeline": Sweep((1,)), "tests": ("set", "get")})
    (('clients', (1, 10)),)
    """
    return tuple(
        (name, value) for name, value in sorted(parameters.items()) if isinstance(value, Sweep) and len(value) > 1
    )


def fixed(parameters):
    """Every parameter with one value, unwrapped from its one-element tuple."""
    return {
        name: (value[0] if isinstance(value, Sweep) else value)
        for name, value in parameters.items()
        if not (isinstance(value, Sweep) and len(value) > 1)
    }


def combinations(job):
    """One dict of parameter values per array task, in a fixed order.

    >>> class J: parameters = {"clients": Sweep((1, 10)), "pipeline": Sweep((1, 4)), "tests": "set"}
    >>> [sorted(c.items()) for c in combinations(J)][1]
    [('clients', 1), ('pipeline', 4), ('tests', 'set')]
    """
    base = fixed(job.parameters)
    axes = swept(job.parameters)
    names = [name for name, _ in axes]
    return tuple({**base, **dict(zip(names, values))} for values in product(*(v for _, v in axes)))
