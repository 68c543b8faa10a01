"""orch.report: documents written by the real clients, laid out as a registry run, made into a report.

The redis documents come from orch.clients.redis_benchmark against a real redis
(tests/test_redis_client.py's fixture), the LLM ones from the streaming client
against tests/llm_server.py. The HTML is opened in headless Chromium (Debian's
/usr/bin/chromium), which must log no console message and take a screenshot;
it skips when Chromium is missing, unless CI is set (then it fails).
"""
import copy
import json
import os
import re
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import open_in_chromium  # noqa: E402
from llm_server import running_server  # noqa: E402
from test_redis_client import client, finish, redis_port  # noqa: E402,F401  (redis_port: the fixture)

from orch import report  # noqa: E402
from orch.clients import ollama_benchmark  # noqa: E402

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
    record = {"id": run_id, "name": kind, "kind": kind, "role": "client", "job_name": "%s_%s" % (kind, run_id),
              "run_dir": str(run_dir), "state": state, "job_id": "4242", "reason": ""}
    (run_dir / "run.json").write_text(json.dumps(record))
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
    runs = [report.gather(*run)]
    figures = {name: spec for name, _, spec in report.figures_of(runs)}
    ttft, itl = figures["ollama-benchmark-llm-distributions"]["panels"]
    assert [len(s["samples"]) for s in ttft["series"]] == [6, 6]
    assert [len(s["samples"]) for s in itl["series"]] == [6 * 7, 6 * 7]
    assert all(15 < v < 60 for s in ttft["series"] for v in s["samples"])
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
    figures = {name: spec for name, _, spec in report.figures_of([report.gather(*run)])}
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
