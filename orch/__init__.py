"""orch: YAML recipes to SLURM batch scripts for benchmarking services on HPC clusters.

The library in a few names: ``load_job``/``parse_job`` turn a recipe into a
``Job`` record; ``render(job)`` gives its script; ``sections`` holds the
section functions a kind is made of, so a custom service is a list of them.
"""
__version__ = "0.1.0"

__all__ = ("__version__", "render", "render_job", "load_job", "parse_job", "Job", "RecipeError", "OrchError")


def render_job(job, kinds=None):
    """The script for ``job``, with its kind's sections."""
    from orch.kinds import KINDS
    from orch.sections import render

    table = KINDS if kinds is None else kinds
    return render(job, table[job.kind].sections)


def __getattr__(name):
    # keep `import orch` light: the CLI's render path imports only what it uses
    if name == "render":
        from orch.sections import render

        return render
    if name in ("load_job", "parse_job"):
        from orch import recipe

        return getattr(recipe, name)
    if name == "Job":
        from orch.records import Job

        return Job
    if name in ("RecipeError", "OrchError"):
        from orch import errors

        return getattr(errors, name)
    raise AttributeError("module 'orch' has no attribute %r" % name)
