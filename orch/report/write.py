"""The report's one effectful module: reads the runs (run directory, registry) and writes the report's files.

Everything it reads goes through the effects layer: ``orch.effects.files``
(local files, or ``cat``/``ls`` on the login node for a ``--remote`` run,
through ``runner``), the registry (the recipe) and ``orch.experiment_runs``
(an experiment's members). It hands what it read to the pure parts
(``gather``, then ``report_files``) and writes their answer. Those modules are
imported when called, as ``orch report`` needs them, never at ``import orch.report``.
"""
import os
from functools import partial

from orch.report.gather import gather
from orch.report.render import FIGURE_DIR, report_files

__all__ = ("write_report", "gather_run", "readers", "registry_recipe", "experiment_members")


def readers(record, *, runner=None):
    """``{"read_text", "list_dir"}`` for the run's directory: local, or on its login node (``record["remote"]``)."""
    from orch.argv import parse_remote
    from orch.effects import files

    kwargs = {"runner": runner} if runner is not None else {}
    remote = parse_remote(record["remote"]) if record.get("remote") else None
    return {"read_text": partial(files.read_text, remote=remote, **kwargs),
            "list_dir": partial(files.list_dir, remote=remote, **kwargs)}


def registry_recipe(record):
    """The registry's ``recipe.yaml`` (``experiment.yaml`` for an experiment) of the run, or None."""
    from orch.effects import files, registry

    name = "experiment.yaml" if record.get("role") == "experiment" else "recipe.yaml"
    return files.read_text(os.path.join(registry.run_dir(record["id"]), name))


def experiment_members(record):
    """An experiment's member run records, as the registry holds them; [] for a single run."""
    if record.get("role") != "experiment":
        return []
    from orch.experiment_runs import members_of

    return members_of(record)


def gather_run(record, documents, label="A", *, recipe=None, runner=None):
    """``gather`` with the run's own readers; the recipe comes from the registry unless given."""
    return gather(record, documents, label, **readers(record, runner=runner),
                  recipe=registry_recipe(record) if recipe is None else recipe, members=experiment_members(record))


def write_report(records_with_documents, out_dir, *, recipes=None, runner=None):
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` for one run or two compared; return the paths.

    ``records_with_documents``: ``[(run record, [orch.result/1 documents])]``, one or two of them;
    ``recipes``: optional ``{run id: recipe text}`` (default: the registry's ``recipe.yaml``).
    """
    if len(records_with_documents) not in (1, 2):
        raise ValueError("a report covers one run, or two compared")
    runs = [gather_run(record, documents, label, recipe=(recipes or {}).get(record["id"]), runner=runner)
            for (record, documents), label in zip(records_with_documents, ("A", "B"))]
    files = report_files(runs)
    os.makedirs(os.path.join(out_dir, FIGURE_DIR), exist_ok=True)  # there even when the report has no figure
    written = []
    for relative, content in files.items():
        path = os.path.join(out_dir, *relative.split("/"))
        if isinstance(content, bytes):
            with open(path, "wb") as handle:
                handle.write(content)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
        written.append(path)
    return written
