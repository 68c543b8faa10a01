"""orch.report: documents written by the real clients, laid out as a registry run, made into a report.

The redis documents come from orch.clients.redis_benchmark against a real redis
(tests/test_redis_client.py's fixture), the LLM ones from the streaming client
against tests/llm_server.py. The HTML is opened in headless Chromium (Debian's
/usr/bin/chromium), which must log no console message and take a screenshot;
it skips when Chromium is missing, unless CI is set (then it fails).

``gather`` is also run on dict-backed readers with every other way to the world
closed, and the package's modules are checked to leave reading and writing to
``orch.report.write``.
"""
import ast
import builtins
import collections
import contextlib
import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import open_in_chromium  # noqa: E402
from llm_server import running_server  # noqa: E402
from test_redis_client import client, finish, redis_port  # noqa: E402,F401  (redis_port: the fixture)

from orch import report  # noqa: E402
from orch.clients import ollama_benchmark  # noqa: E402
from orch.report.write import gather_run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = [(c, p) for c in (1, 4) for p in (1, 8)]


@pytest.fixture(scope="module")
def redis_docs(redis_port, tmp_path_factory):  # noqa: F811
    """Four sweep points (clients x pipeline) measured by the redis client, as its array tasks would."""
    base = tmp_path_factory.mktemp("redis_docs")
    documents = []
    for task, (clients, pipeline) in enumerate(SWEEP):
        out = base / ("t%d.json" % task)
        code, err = finish(client(redis_port, out, "--requests", "2000", "--clients", str(clients),
                                  "--pipeline", str(pipeline), "--tests", "set,get"))
        assert code == 0, err
        document = json.loads(out.read_text())
        document["environment"]["array_task"] = str(task)
        document["environment"]["slurm_job_id"] = "4242"
        documents.append(document)
    return documents


@pytest.fixture(scope="module")
def llm_output(tmp_path_factory):
    """Two sweep points (concurrency 1, 2) of the LLM client: documents and their per-request JSONL."""
    base = tmp_path_factory.mktemp("llm_docs")
    with running_server(lifetime=60) as port:
        for task, concurrency in enumerate((1, 2)):
            status = ollama_benchmark.main([
                "--host", "127.0.0.1", "--port", str(port), "--duration", "20", "--num-requests", "6",
                "--model", "mock?ttft_ms=20&itl_ms=4&tokens=8", "--concurrency", str(concurrency),
                "--output", str(base / ("t%d.json" % task))])
            assert status == 0
    return base


def lay_out(home, run_id, documents, *, files=(), state="completed", metrics=None, kind="redis_benchmark"):
    """A registry run as `orch submit` leaves it: runs/<id>/{run.json, recipe.yaml, results/, metrics/}."""
    run_dir = home / "runs" / run_id
    (run_dir / "results").mkdir(parents=True)
    (run_dir / "metrics").mkdir()
    from orch.runrecord import as_json, moved, new_run

    record = moved(new_run(1.0, id=run_id, name=kind, kind=kind, role="client", job_name="%s_%s" % (kind, run_id),
                           recipe="<test>", site="local", runtime="host", run_dir=str(run_dir),
                           endpoints_dir=str(home / "endpoints")).set(job_id="4242"), state, "", 2.0)
    (run_dir / "run.json").write_text(as_json(record))
    recipe = "redis_sweep.yaml" if kind == "redis_benchmark" else "ollama_benchmark.yaml"
    shutil.copy(os.path.join(ROOT, "recipes", "clients", recipe), run_dir / "recipe.yaml")
    for index, document in enumerate(documents):
        (run_dir / "results" / ("%s_%d.json" % (run_id, index))).write_text(json.dumps(document))
    for path in files:
        shutil.copy(path, run_dir / "results")
    for name, answer in (metrics or {}).items():
        (run_dir / "metrics" / name).write_text(json.dumps(answer))
    return record, documents


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def table_rows(markdown, heading):
    """The data rows of the first Markdown table after ``heading``."""
    after = markdown.split(heading, 1)[1]
    lines = [line for line in after.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return table[0], table[2:]


def read(out):
    return (out / "report.md").read_text(), (out / "report.html").read_text()


def assert_self_contained(page):
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert links, "the figures are embedded"
    assert all(link.startswith("data:image/png;base64,") or link.startswith("#") for link in links), links
    assert not re.search(r"https?://", " ".join(links))
    assert "<script" not in page and "<link" not in page


def prometheus(metric, values, **labels):
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": dict(__name__=metric, **labels), "values": [[1700000000 + 5 * i, str(v)] for i, v in enumerate(values)]}]}}


def test_a_sweep_gives_one_row_per_point_the_plots_and_says_there_are_no_metrics(home, tmp_path, redis_docs):
    run = lay_out(home, "a1b2c3d4", redis_docs)
    out = tmp_path / "report"
    written = report.write_report([run], str(out))
    markdown, page = read(out)
    header, rows = table_rows(markdown, "### redis_benchmark (4 points; swept: clients, pipeline)")
    assert len(rows) == 4
    points = sorted((int(r[header.index("clients")]), int(r[header.index("pipeline")])) for r in rows)
    assert points == SWEEP
    assert "set_ms.p99" in header and "requests_per_s" in header and "partial" in header
    # the plots, named, as files beside the Markdown
    assert "![redis_benchmark: throughput and latency percentiles (p50 solid, p95 dashed, p99 dotted) against clients]" \
           "(figures/redis-benchmark-sweep.png)" in markdown
    assert (out / "figures" / "redis-benchmark-sweep.png").stat().st_size > 10000
    assert "No resource metrics" in markdown and "metrics/*.json" in markdown
    # recipe and environment
    assert "sweep:\n    clients: [1, 10, 50]" in markdown
    assert "| tool | redis-benchmark " in markdown and "| SLURM job ids | 4242 |" in markdown
    assert "| orch version | 0.1.0 |" in markdown
    assert "Partial" not in markdown
    assert_self_contained(page)
    assert page.count("data:image/png;base64,") == 1
    # the same inputs, the same bytes (PNG metadata included)
    again = tmp_path / "again"
    report.write_report([run], str(again))
    for path in written:
        assert (again / os.path.relpath(path, out)).read_bytes() == open(path, "rb").read(), path
    # what is written is report_files' answer, file for file, in its order
    files = report.report_files([gather_run(*run)])
    assert [os.path.relpath(path, out) for path in written] == list(files)
    for relative, content in files.items():
        assert (out / relative).read_bytes() == (content if isinstance(content, bytes) else content.encode("utf-8"))


def test_the_html_opens_in_chromium_without_console_messages(home, tmp_path, redis_docs):
    metrics = {"cpu.json": prometheus("container_cpu_usage", [0.1 * i for i in range(30)], name="redis"),
               "memory.json": prometheus("container_memory_rss", [2e6 + 1e5 * i for i in range(30)], name="redis")}
    run = lay_out(home, "e5f6a7b8", redis_docs, metrics=metrics)
    out = tmp_path / "report"
    report.write_report([run], str(out))
    markdown, page = read(out)
    assert "resource use over time" in markdown and "No resource metrics" not in markdown
    assert_self_contained(page)
    console, data = open_in_chromium(out / "report.html", tmp_path)
    assert not console, console
    assert data.startswith(b"\x89PNG") and len(data) > 50000  # a blank 1280x2000 page is a few kB


def test_two_runs_are_compared_with_the_ratio_b_over_a(home, tmp_path, redis_docs):
    faster = copy.deepcopy(redis_docs)
    for document in faster:
        document["throughput"]["requests_per_s"] *= 2
    a = lay_out(home, "aaaa0001", redis_docs)
    b = lay_out(home, "bbbb0002", faster)
    out = tmp_path / "report"
    report.write_report([a, b], str(out))
    markdown, page = read(out)
    header, rows = table_rows(markdown, "## Comparison (B/A)")
    assert header[:2] == ["clients", "pipeline"] and header[-3:] == ["A", "B", "B/A"]
    rates = [r for r in rows if r[header.index("figure")] == "requests_per_s"]
    assert len(rates) == 4 and all(r[-1] == "2" for r in rates)
    same = [r for r in rows if r[header.index("figure")] == "set_ms.p99"]
    assert len(same) == 4 and all(r[-1] == "1" for r in same)
    assert "A: Results (aaaa0001)" in markdown and "B: Results (bbbb0002)" in markdown
    assert "![redis_benchmark: throughput" in markdown
    assert_self_contained(page)


def test_an_llm_run_shows_ttft_and_inter_token_latency_distributions(home, tmp_path, llm_output):
    documents = [json.loads((llm_output / name).read_text()) for name in ("t0.json", "t1.json")]
    jsonl = [str(llm_output / d["raw"]["requests"]) for d in documents]
    run = lay_out(home, "c0ffee00", documents, files=jsonl, kind="ollama_benchmark")
    out = tmp_path / "report"
    report.write_report([run], str(out))
    markdown, _ = read(out)
    assert "(figures/ollama-benchmark-llm-distributions.png)" in markdown
    assert "TTFT and inter-token latency distributions" in markdown
    header, rows = table_rows(markdown, "### ollama_benchmark (2 points; swept: concurrency)")
    assert len(rows) == 2 and "ttft_ms.p99" in header
    # the CDFs come from every measured request of the JSONL
    runs = [gather_run(*run)]
    figures = {name: spec for name, _, spec in report.figures_of(runs)}
    ttft, itl = figures["ollama-benchmark-llm-distributions"]["panels"]
    assert [len(s["samples"]) for s in ttft["series"]] == [6, 6]
    assert [len(s["samples"]) for s in itl["series"]] == [6 * 7, 6 * 7]
    # every sample at least the injected 20 ms (less 5 ms of server earliness); the median not far above
    samples = sorted(v for s in ttft["series"] for v in s["samples"])
    assert samples[0] > 15 and samples[len(samples) // 2] < 20 + 100
    assert "per-request JSONL" in ttft["xlabel"]


def test_without_the_jsonl_the_distributions_come_from_the_summaries_and_partial_is_marked(home, tmp_path, llm_output):
    document = json.loads((llm_output / "t0.json").read_text())
    document["run"]["partial"] = True
    run = lay_out(home, "deadbeef", [document], kind="ollama_benchmark", state="cancelled")
    out = tmp_path / "report"
    report.write_report([run], str(out))
    markdown, page = read(out)
    assert "Partial results (deadbeef): 1 of 1 documents are partial" in markdown and "the run is cancelled" in markdown
    assert 'class="note"' in page
    figures = {name: spec for name, _, spec in report.figures_of([gather_run(*run)])}
    ttft = figures["ollama-benchmark-llm-distributions"]["panels"][0]
    assert "summary percentiles" in ttft["xlabel"] and "quantiles" in ttft["series"][0]


def test_swept_parameters_and_ratios_from_documents_alone():
    def doc(clients, pipeline, rate):
        return {"parameters": {"clients": clients, "pipeline": pipeline, "tests": ["set"]},
                "throughput": {"requests_per_s": rate}, "latency": {}, "domain": {}}

    a = [doc(c, p, 100.0 * c) for c in (1, 10, 50) for p in (1, 16)]
    b = [doc(c, p, 150.0 * c) for c in (1, 10) for p in (1, 16)]
    assert report.swept_names(a) == ("clients", "pipeline")
    rows = report.comparison_rows(a, b)
    assert [(r["clients"], r["pipeline"], r["B/A"]) for r in rows] == [
        (1, 1, 1.5), (1, 16, 1.5), (10, 1, 1.5), (10, 16, 1.5), (50, 1, None), (50, 16, None)]
    spec = report.sweep_figure("t", [(None, a)], ("clients", "pipeline"))
    lines = spec["panels"][0]["series"]
    assert [s["label"] for s in lines] == ["pipeline=1", "pipeline=16"] and lines[0]["x"] == [1, 10, 50]


# --- gather sees files only through its readers; the package leaves effects to orch.report.write


def dict_readers(files):
    """``read_text`` and ``list_dir`` over ``{path: text}``, and the log of every call made to them."""
    calls = []

    def read_text(path):
        calls.append(("read_text", path))
        return files.get(path)

    def list_dir(path):
        calls.append(("list_dir", path))
        return sorted({p[len(path) + 1:].split("/")[0] for p in files if p.startswith(path + "/")})

    return {"read_text": read_text, "list_dir": list_dir}, calls


@contextlib.contextmanager
def closed_world(monkeypatch):
    """Inside, every other way to a file or a process raises (``seen`` lists the attempts); reopened on the way out."""
    seen = []

    def refuse(*args, **kwargs):
        seen.append(args)
        raise AssertionError("gather reached the world: %r" % (args,))

    with monkeypatch.context() as closed:
        for owner, name in ((builtins, "open"), (os, "open"), (os, "listdir"), (os, "scandir"), (os, "stat"),
                            (subprocess, "Popen")):
            closed.setattr(owner, name, refuse)
        yield seen


def test_gather_reads_the_run_only_through_the_readers_it_is_given(monkeypatch):
    run_dir = "/login/scratch/run1"  # nowhere on this machine
    files = {
        run_dir + "/results/t0.requests.jsonl": '{"status": "ok", "t_send": 1}\n{"status": "ok"}\n{"status": "o',
        run_dir + "/results/escape.jsonl": "{}",
        run_dir + "/metrics/cpu.json": json.dumps({"data": {"result": []}}),
        run_dir + "/metrics/broken.json": "{",
        run_dir + "/metrics/empty.json": "",
        run_dir + "/metrics/.cpu.json.tmp.json": "{}",
        run_dir + "/metrics/notes.txt": "not a query",
    }
    documents = [{"raw": {"requests": "t0.requests.jsonl"}}, {"raw": {"requests": "../results/escape.jsonl"}},
                 {"raw": {"requests": ".hidden.jsonl"}}, {}, {"raw": {"requests": "gone.jsonl"}}]
    readers, calls = dict_readers(files)
    record = {"id": "r1", "run_dir": run_dir, "role": "experiment"}
    members = [{"id": "m1", "alias": "cache"}]
    with closed_world(monkeypatch) as seen:
        run = report.gather(record, documents, "B", **readers, recipe="client: {}\n", members=members)
    assert seen == []
    assert run == {
        "label": "B", "record": record, "recipe": "client: {}\n", "documents": documents, "members": members,
        "requests": {0: [{"status": "ok", "t_send": 1}, {"status": "ok"}]},  # the line cut short is left out
        "metrics": {"broken.json": None, "cpu.json": {"data": {"result": []}}, "empty.json": None},
    }
    # names that would leave results/ (or hidden files) are never even asked for
    assert calls == [("read_text", run_dir + "/results/t0.requests.jsonl"), ("read_text", run_dir + "/results/gone.jsonl"),
                     ("list_dir", run_dir + "/metrics"), ("read_text", run_dir + "/metrics/broken.json"),
                     ("read_text", run_dir + "/metrics/cpu.json"), ("read_text", run_dir + "/metrics/empty.json")]


def test_gathered_from_dict_readers_the_report_is_the_one_from_disk(home, tmp_path, llm_output):
    documents = [json.loads((llm_output / name).read_text()) for name in ("t0.json", "t1.json")]
    jsonl = [str(llm_output / d["raw"]["requests"]) for d in documents]
    metrics = {"cpu.json": prometheus("container_cpu_usage", [0.1 * i for i in range(10)], name="ollama")}
    record, _ = lay_out(home, "f00dcafe", documents, files=jsonl, kind="ollama_benchmark", metrics=metrics)
    on_disk = {}
    for path in glob.glob(os.path.join(record["run_dir"], "*", "*")):
        with open(path, encoding="utf-8") as handle:
            on_disk[path] = handle.read()
    readers, _ = dict_readers(on_disk)
    recipe = (home / "runs" / "f00dcafe" / "recipe.yaml").read_text()
    from_dict = report.gather(record, documents, **readers, recipe=recipe, members=[])
    assert from_dict == gather_run(record, documents)
    assert report.render([from_dict])[:2] == report.render([gather_run(record, documents)])[:2]


def test_a_remote_run_is_read_on_its_login_node_through_the_runner(home, llm_output):
    documents = [json.loads((llm_output / "t0.json").read_text())]
    record, _ = lay_out(home, "be5ea7ed", documents, kind="ollama_benchmark")
    record = dict(record, remote="u100@login.example:8822", run_dir="/home/u100/orch/runs/be5ea7ed")
    jsonl = (llm_output / documents[0]["raw"]["requests"]).read_text()
    remote_files = {record["run_dir"] + "/results/" + documents[0]["raw"]["requests"]: jsonl,
                    record["run_dir"] + "/metrics/cpu.json": json.dumps({"data": {"result": []}})}
    done = collections.namedtuple("Completed", "exit_code stdout")
    calls = []

    def runner(argv, remote=None, **kwargs):
        calls.append((tuple(argv), remote.destination, remote.port))
        if argv[0] == "cat":
            return done(0, remote_files[argv[1]]) if argv[1] in remote_files else done(1, "")
        assert argv[:2] == ("ls", "-1"), argv
        return done(0, "cpu.json\n")

    run = gather_run(record, documents, runner=runner)
    assert len(run["requests"][0]) == 6 and run["metrics"] == {"cpu.json": {"data": {"result": []}}}
    assert run["recipe"].startswith("# ")  # the registry's recipe.yaml, on this machine
    assert [c[0][0] for c in calls] == ["cat", "ls", "cat"]
    assert {c[1:] for c in calls} == {("u100@login.example", 8822)}


EFFECTS = ("os", "subprocess", "sh", "shutil", "pathlib", "io", "orch.runs", "orch.effects", "orch.experiment_runs")


def test_only_the_write_module_of_the_report_reads_or_writes():
    package = os.path.join(ROOT, "orch", "report")
    for path in sorted(glob.glob(os.path.join(package, "*.py"))):
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {"%s.%s" % (node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     and node.module for alias in node.names}
        effects = sorted(name for name in imported if any(name == e or name.startswith(e + ".") for e in EFFECTS))
        opens = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name) and node.func.id == "open"]
        if os.path.basename(path) == "write.py":
            assert effects and opens, "write.py is where the report reads and writes"
        else:
            assert not effects and not opens, (path, effects, opens)
    # and importing the package loads neither matplotlib nor the effects layer
    heavy = ("matplotlib", "sh") + tuple(e for e in EFFECTS if e.startswith("orch."))
    loaded = subprocess.run([sys.executable, "-c", "import sys, orch.report; print(sorted(m for m in sys.modules"
                             " if m.split('.')[0] in %r or m.startswith(%r)))" % (heavy[:2], heavy[2:])],
                            capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
