"""Monitoring: exporters beside the jobs, Prometheus finding them through file_sd, metrics kept for the report.

Pure checks first (the experiment's monitoring: block, the rendered sidecars,
the conductor's collection lines); then a real node_exporter beside a real
redis; then, under the test SLURM, whole experiments.
"""
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import bash_syntax, open_in_chromium, shellcheck
from orch import render_job
from orch.errors import RecipeError
from orch.experiments import parse_experiment
from orch.metrics import duration_seconds, queries
from orch.sections.conductor import collection_lines, conductor_script
from orch.recipe import parse_job
from slurm_cluster import slurm_cluster  # noqa: F401  (fixture)
from test_slurm import assert_nothing_left, env, free_port, orch, status  # noqa: F401  (fixture, helpers)

MONITORED = """experiment:
  name: monitored
  monitoring:
    exporter: node_exporter
    scrape_interval: 1s
    prometheus:
      ports: [%(prometheus)d]
      resources: {time: "00:10:00", mem: 1G}
  services:
    - service:
        name: redis
        ports: [%(port)d]
        resources: {time: "00:10:00", mem: 1G}
        health_check: {timeout: %(timeout)d, retries: %(retries)d, interval: 1}%(service_extra)s
      as: cache
  clients:
    - client:
        name: redis_benchmark
        resources: {time: "00:05:00", mem: 1G}
        parameters: {requests: %(requests)d, tests: "set,get", clients: 10, wait_for_service: 120}%(client_extra)s
      target: cache
"""


def monitored(**values):
    defaults = {"prometheus": 19090, "port": 16379, "timeout": 30, "retries": 30, "service_extra": "", "client_extra": "", "requests": 200000}
    return MONITORED % dict(defaults, **values)


def experiment(text, runtime="host"):
    return parse_experiment(text, "<e>", site="local", runtime=runtime)


def problems(text):
    with pytest.raises(RecipeError) as caught:
        experiment(text)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


# --- the monitoring: block


def test_monitoring_adds_a_prometheus_first_with_the_scrape_interval_and_the_exporters():
    parsed = experiment(monitored())
    assert [(m.alias, m.monitoring) for m in parsed.services] == [("prometheus", True), ("cache", False)]
    assert parsed.exporters == ("node_exporter",) and parsed.scrape_interval == "1s"
    prometheus = parse_job(parsed.prometheus.text, "<p>", site="local", runtime="host")
    assert prometheus.kind == "prometheus" and prometheus.settings["scrape_interval"] == "1s" and list(prometheus.ports) == [19090]


def test_without_a_monitoring_block_nothing_is_added():
    text = monitored().replace(monitored().split("  services:")[0].split("experiment:\n  name: monitored\n")[1], "")
    parsed = experiment(text)
    assert [m.alias for m in parsed.services] == ["cache"] and parsed.exporters == () and parsed.scrape_interval is None


@pytest.mark.parametrize(
    "change, line, field, words",
    [
        (("exporter: node_exporter", "exporter: snmp"), 4, "experiment.monitoring.exporter", "not one of"),
        (("scrape_interval: 1s", "scrape_interval: often"), 5, "experiment.monitoring.scrape_interval", "Prometheus duration"),
        (("ports: [19090]", "ports: [99999]"), 7, "experiment.monitoring.prometheus.ports[0]", ""),
        (("    prometheus:\n", "    unused: 1\n    prometheus:\n"), 6, "experiment.monitoring.unused", "unknown field"),
        (("      as: cache", "      as: prometheus"), 10, "experiment.services[0]", "monitoring's own service"),
        (("      ports: [19090]", "      name: prom\n      ports: [19090]"), 7, "experiment.monitoring.prometheus.name", "leave name out"),
    ],
)
def test_monitoring_problems_name_the_line_and_field(change, line, field, words):
    found = problems(monitored().replace(*change))
    assert any(f == field and words in m and (line is None or l == line) for l, f, m in found), found


def test_grafana_without_prometheus_is_a_problem():
    found = problems(monitored().replace("    prometheus:\n      ports: [19090]\n      resources: {time: \"00:10:00\", mem: 1G}\n",
                                         "    prometheus: false\n    grafana: true\n"))
    assert any(f == "experiment.monitoring.grafana" and "leave prometheus on" in m for _, f, m in found), found


# --- the experiment's sweep


SWEPT = monitored().replace("  services:", "  sweep:\n    clients: [1, 5, 10]\n    pipeline: [1, 16]\n  services:")


def test_the_experiment_sweep_is_read_by_each_clients_kind():
    client = experiment(SWEPT).clients[0]
    assert dict(client.sweep) == {"clients": (1, 5, 10), "pipeline": (1, 16)}


def test_an_experiment_sweep_problem_is_at_its_line_and_names_the_client():
    found = problems(SWEPT.replace("pipeline: [1, 16]", "pipeline: [1, lots]"))
    assert any(line == 11 and field == "experiment.sweep.pipeline" and m.endswith("(for client redis_benchmark)")
               for line, field, m in found), found
    found = problems(SWEPT.replace("pipeline: [1, 16]", "colour: [red]"))
    assert any(field == "experiment.sweep.colour" and "unknown field" in m for _, field, m in found), found


def test_a_parameter_swept_twice_is_a_problem():
    text = SWEPT.replace("wait_for_service: 120}", "wait_for_service: 120}\n        sweep: {pipeline: [1, 2]}")
    found = problems(text)
    assert any(f == "experiment.sweep.pipeline" and "give the values in one place" in m for _, f, m in found), found


# --- rendered sidecars


def test_rendered_members_with_exporters_pass_shellcheck_on_every_runtime():
    for runtime in ("host", "apptainer"):
        parsed = experiment(SWEPT, runtime)
        for member in parsed.services + parsed.clients:
            job = parse_job(member.text, "<m>", site="local", runtime=runtime).set(node_exporter=not member.monitoring, experiment="r1")
            script = render_job(job)
            assert bash_syntax(script) == "" and shellcheck(script) == "", (runtime, member.alias)
            if not member.monitoring:
                assert "orch_publish_target node_exporter" in script and '"orch_run": "r1"' in script


def test_the_conductor_collects_every_query_then_stops_the_services():
    script = conductor_script("e", "r1", "/runs/r1", ["11", "12"], prometheus_endpoint="/runs/r1/endpoints/prometheus_x.json",
                              scrape_interval="5s", start=1700000000)
    assert bash_syntax(script) == "" and shellcheck(script) == ""
    assert script.index("orch_query cpu_busy_cores") < script.index("scancel 11 12")
    assert script.count("orch_query ") == len(queries("r1", "5s"))
    kept = conductor_script("e", "r1", "/runs/r1", ["11"], stop=False, prometheus_endpoint="/p.json")
    assert "scancel" not in kept and "orch_query" in kept


def test_queries_select_the_run_and_rate_over_four_scrapes():
    assert duration_seconds("1m30s") == 90
    for name, query in queries("abc123", "5s"):
        assert 'orch_run="abc123"' in query, name
        assert "[20s]" in query or "rate(" not in query, name
    assert all("[10s]" in q for _, q in queries("a", "1s") if "rate(" in q)


def test_collection_lines_keep_whole_answers_only():
    lines = "\n".join(collection_lines("/e/p.json", "/m", "r", "5s", 0))
    # orch_write (tests/test_sections.py) keeps a failed query's old file, or none
    assert 'orch_write "$orch_metrics/$1" "${@:2}"' in lines and "--max-time 30" in lines


def test_the_resource_figure_names_panels_by_what_they_measure_and_series_by_member():
    from orch.report import metrics_figure

    answer = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"orch_name": "redis", "orch_role": "service", "instance": "n1:9100"}, "values": [[1.0, "0.5"], [2.0, "0.7"]]}]}}
    figure = metrics_figure("resource use", {"cpu_busy_cores.json": answer, "targets.json": {"data": {"activeTargets": []}}})
    assert figure["title"] == "resource use"
    [panel] = figure["panels"]
    assert (panel["title"], panel["ylabel"], panel["xscale"]) == ("CPU busy (node_exporter)", "cores", "linear")
    assert panel["series"][0]["label"] == "redis (service) n1:9100" and panel["series"][0]["x"] == [0.0, 1.0]


# --- a real node_exporter beside a real redis (host runtime, no scheduler)


def test_the_exporter_is_published_with_its_labels_and_withdrawn_at_the_end(tmp_path):
    port = free_port()
    recipe = "service:\n  name: redis\n  ports: [%d]\n  enable_node_exporter: true\n  health_check: {timeout: 20, interval: 1}\n" % port
    job = parse_job(recipe, "<r>", site="local", runtime="host", job_id="t1", run_dir=str(tmp_path / "run"),
                    endpoints_dir=str(tmp_path / "endpoints"))
    script = tmp_path / "redis.sh"
    script.write_text(render_job(job))
    proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        found = []
        while not found and time.monotonic() < deadline:
            found = list((tmp_path / "endpoints").glob("*.targets.json"))
            time.sleep(0.1)
        assert found, "no targets file"
        [group] = json.loads(found[0].read_text())
        assert group["labels"] == {"job": "node_exporter", "orch_run": "t1", "orch_name": "redis", "orch_role": "service",
                                   "orch_slurm_job": ""}
        [address] = group["targets"]
        with urllib.request.urlopen("http://%s/metrics" % address, timeout=10) as answer:
            assert b"node_cpu_seconds_total" in answer.read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    assert list((tmp_path / "endpoints").glob("*.targets.json")) == []
    assert_nothing_left(str(tmp_path / "run"))


# --- under SLURM


def _targets(prometheus_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % prometheus_port, timeout=5) as answer:
        return json.load(answer)["data"]["activeTargets"]


def _exporter_up(prometheus_port, name):
    try:
        targets = _targets(prometheus_port)
    except OSError:
        return False
    return any(t["labels"].get("job") == "node_exporter" and t["labels"].get("orch_name") == name and t["health"] == "up"
               for t in targets)


@pytest.mark.slurm
def test_a_monitored_experiment_runs_through_with_metrics_and_a_report(env, tmp_path):  # noqa: F811
    prometheus_port, port = free_port(), free_port()
    path = tmp_path / "e.yaml"
    # Prometheus takes up to 5 s to scrape a target it has just discovered (its scrape manager reloads
    # at most that often), and a fast machine sends 600,000 requests in 4 s. So the client waits 10 s
    # before it starts (the service's exporter is scraped meanwhile), and sends 3 million requests
    # (10 s at 300,000 a second), so its own exporter is scraped too.
    path.write_text(monitored(prometheus=prometheus_port, port=port, requests=1500000,
                              client_extra='\n        setup_script: "sleep 10"'))
    ran = orch(env, "run", str(path), "--site", "local", "--runtime", "host")
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split()[0]
    # Prometheus finds the service's exporter by itself: nobody named it anywhere
    deadline = time.monotonic() + 90
    while not _exporter_up(prometheus_port, "redis") and time.monotonic() < deadline:
        time.sleep(1)
    assert _exporter_up(prometheus_port, "redis"), _targets(prometheus_port)

    waited = orch(env, "wait", run_id, "--state", "done", "--timeout", "240", timeout=300)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    members = json.loads(orch(env, "status", "--json", run_id).stdout)
    assert members[0]["state"] == "completed", members
    documents = json.loads(orch(env, "results", run_id, "--format", "json").stdout)
    assert len(documents) == 1 and documents[0]["throughput"]
    for member in members[1:]:
        deadline = time.monotonic() + 60
        while status(env, member["id"])["state"] not in ("completed", "cancelled", "failed") and time.monotonic() < deadline:
            time.sleep(1)
        assert_nothing_left(member["run_dir"])
    services = [m for m in members if m["role"] == "service"]
    assert {status(env, m["id"])["state"] for m in services} == {"cancelled"}  # stopped by the conductor

    metrics = os.path.join(members[0]["run_dir"], "metrics")
    cpu = json.load(open(os.path.join(metrics, "cpu_busy_cores.json")))
    names = {series["metric"].get("orch_name") for series in cpu["data"]["result"]}
    assert {"redis", "redis_benchmark"} <= names, names
    targets = json.load(open(os.path.join(metrics, "targets.json")))["data"]["activeTargets"]
    assert any(t["labels"].get("orch_name") == "redis" and t["health"] == "up" for t in targets)

    out = tmp_path / "report"
    reported = orch(env, "report", run_id, "--out", str(out))
    assert reported.returncode == 0, reported.stderr
    markdown = (out / "report.md").read_text()
    assert "resource use over time" in markdown and "## Scrape targets" in markdown and "## Jobs of the experiment" in markdown
    assert (out / "figures" / "resources.png").stat().st_size > 20000
    console, shot = open_in_chromium(out / "report.html", tmp_path)
    assert not console, console
    assert shot.startswith(b"\x89PNG") and len(shot) > 50000


@pytest.mark.slurm
def test_a_service_that_never_gets_ready_fails_the_run_after_its_health_checks(env, tmp_path):  # noqa: F811
    path = tmp_path / "e.yaml"
    # a redis that never answers: the port is never opened
    path.write_text(monitored(prometheus=free_port(), port=free_port(), timeout=300, retries=8,
                              service_extra='\n        command: sleep\n        args: ["300"]'))
    started = time.monotonic()
    ran = orch(env, "run", str(path), "--site", "local", "--runtime", "host", "--wait", timeout=300)
    elapsed = time.monotonic() - started
    assert ran.returncode == 1, ran.stderr
    # never before its 8 checks a second apart (the 300 s timeout is the larger limit); well before
    # the client's own 120 s wait for the service
    assert 8 <= elapsed < 8 + 60, "the run took %.0f s to fail" % elapsed
    run_id = ran.stdout.split()[0]
    members = json.loads(orch(env, "status", "--json", run_id).stdout)
    assert members[0]["state"] == "failed" and "service cache failed" in members[0]["reason"], members[0]
    assert "not ready after" in members[0]["reason"]
    client = next(m for m in members if m["role"] == "client")
    deadline = time.monotonic() + 60
    while status(env, client["id"])["state"] not in ("cancelled", "failed") and time.monotonic() < deadline:
        time.sleep(1)
    assert status(env, client["id"])["state"] in ("cancelled", "failed")
    for member in members[1:]:
        assert_nothing_left(member["run_dir"])
    out = tmp_path / "report"
    reported = orch(env, "report", run_id, "--out", str(out))
    assert reported.returncode == 0, reported.stderr
    markdown = (out / "report.md").read_text()
    assert "the run is failed: service cache failed: redis not ready after" in markdown
    assert "| cache | service | redis |" in markdown


CHROMA_SWEEP = """experiment:
  name: chroma-sweep
  sweep:
    batch_size: [16, 64]
    top_k: [1, 5, 10]
  services:
    - service:
        name: chroma
        ports: [%(port)d]
        resources: {time: "00:10:00", mem: 2G}
        health_check: {timeout: 90, retries: 90, interval: 1}
  clients:
    - client:
        name: chroma_benchmark
        resources: {time: "00:05:00", mem: 1G}
        sweep_parallelism: 2
        parameters: {num_documents: 200, dimension: 16, num_queries: 20}
"""


@pytest.mark.slurm
def test_an_experiment_sweep_runs_as_one_job_array(env, tmp_path):  # noqa: F811
    path = tmp_path / "e.yaml"
    path.write_text(CHROMA_SWEEP % {"port": free_port()})
    ran = orch(env, "run", str(path), "--site", "local", "--runtime", "host", "--wait", timeout=600)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split()[0]
    members = json.loads(orch(env, "status", "--json", run_id).stdout)
    [client] = [m for m in members if m["role"] == "client"]
    script = open(os.path.join(client["run_dir"], "script.sbatch")).read()
    assert "#SBATCH --array=0-5%2" in script
    documents = json.loads(orch(env, "results", run_id, "--format", "json").stdout)
    points = sorted((d["parameters"]["batch_size"], d["parameters"]["top_k"]) for d in documents)
    assert points == [(16, 1), (16, 5), (16, 10), (64, 1), (64, 5), (64, 10)]
    assert sorted(int(d["environment"]["array_task"]) for d in documents) == list(range(6))
