"""A run's report input: its documents plus what its run directory holds beside them, read through given readers.

Pure given its readers: ``read_text(path) -> str | None`` and
``list_dir(path) -> [names]`` are the only way it sees files, so the same code
reads a local run directory or one on a login node over ssh (the caller,
``orch.report.write``, picks the readers), and a test hands it a dict.
"""
import json

__all__ = ("gather",)


def gather(record, documents, label="A", *, read_text, list_dir, recipe, members):
    """The run's report input, a dict::

        {"label", "record", "recipe": text | None, "documents": [...],
         "requests": {document index: [JSONL records]},   # raw.requests, when readable
         "metrics": {file name: Prometheus range-query JSON},
         "members": [member run records]}                  # an experiment's jobs, else []

    Reads, through ``read_text`` and ``list_dir``, the per-request JSONL each document names
    in ``raw.requests`` (a bare file name in ``results/``; anything else is not followed) and
    ``metrics/*.json``. ``recipe`` (the recipe text, or None) and ``members`` are passed
    through. Unreadable or malformed files are left out, never guessed at.

    >>> files = {"/r/metrics/cpu.json": '{"data": {"result": []}}', "/r/metrics/bad.json": "{"}
    >>> run = gather({"run_dir": "/r"}, [], read_text=files.get, recipe=None, members=[],
    ...              list_dir=lambda path: sorted(p.rsplit("/", 1)[1] for p in files if p.startswith(path + "/")))
    >>> run["metrics"]
    {'bad.json': None, 'cpu.json': {'data': {'result': []}}}
    """
    run_dir = record["run_dir"]
    requests = {}
    for index, document in enumerate(documents):
        name = (document.get("raw") or {}).get("requests")
        if not name or "/" in name or name.startswith("."):
            continue
        text = read_text(run_dir + "/results/" + name)
        if text:
            lines = []
            for line in text.splitlines():
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a stopped client
            requests[index] = lines
    metrics = {}
    for name in list_dir(run_dir + "/metrics"):
        if name.endswith(".json") and not name.startswith("."):
            text = read_text(run_dir + "/metrics/" + name)
            try:
                metrics[name] = json.loads(text) if text else None
            except ValueError:
                metrics[name] = None
    return {"label": label, "record": record, "recipe": recipe, "documents": list(documents),
            "requests": requests, "metrics": metrics, "members": list(members)}
