"""Grafana: the rendered script, the dashboards orch ships, and the provisioning run for real.

Grafana has no package on the test machines. The provisioning part of a
rendered script (the datasource from the run's Prometheus endpoint, the
dashboards) runs here with plain ``bash`` and a stand-in ``grafana-server``
on PATH: a tiny HTTP server that answers ``/api/health`` and records what it
found in the provisioning directory when it started. The dashboards' queries
run against a real Prometheus scraping a real node_exporter whose target
carries the labels orch publishes.
"""
import json
import re
import subprocess
import sys
import time
import urllib.parse

import pytest
from hypothesis import given, settings
from strictyaml.ruamel import YAML  # strictyaml's own copy of ruamel: a full YAML reader

from conftest import ROOT, bash_syntax, shellcheck
from orch import parse_job, render_job
from orch.errors import RecipeError
from orch.kinds.grafana import shipped_dashboards
from strategies import hostile_values, to_yaml, yaml_scalar
from test_services import Run, free_port, http_json, need, stop_cleanly

# the labels every scrape target orch publishes carries (the exporters' contract)
TARGET_LABELS = {"job", "orch_run", "orch_name", "orch_role", "orch_slurm_job"}
# labels the exporters themselves or Prometheus add: cpu mode, network device, cgroup id, target address
EXPORTER_LABELS = {"mode", "device", "id", "instance"}
NODE_METRICS = {
    "node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes",
    "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
    "node_disk_read_bytes_total", "node_disk_written_bytes_total",
}
CADVISOR_METRICS = {"container_cpu_usage_seconds_total", "container_memory_usage_bytes"}
CLIENT_METRICS = {
    "orch_client_running", "orch_client_waiting", "orch_client_exit_code",
    "orch_client_started_timestamp_seconds", "orch_client_sweep_point",
}
CONTRACT_METRICS = NODE_METRICS | CADVISOR_METRICS | CLIENT_METRICS | {"up"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def dashboards():
    """{file name: dashboard} as orch ships them."""
    return {name: json.loads(text) for name, text in shipped_dashboards()}


def queries(board):
    """Every PromQL expression of a dashboard: its panels' targets and its variables' selectors."""
    found = [target["expr"] for panel in board["panels"] for target in panel.get("targets", ())]
    for variable in board["templating"]["list"]:
        selector, _ = label_values(variable)
        found.append(selector)
    return found


def label_values(variable):
    """``label_values(SELECTOR, LABEL)`` of a query variable, as (SELECTOR, LABEL)."""
    match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"]["query"])
    assert match, variable
    return match.group(1), match.group(2)


def metric_names(expr):
    """The metric names a PromQL expression reads (not its functions, keywords or labels)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    names = re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b(?!\s*\()", text)
    return set(names) - PROMQL_WORDS


def label_names(expr):
    """The labels a PromQL expression matches on or groups by."""
    matchers = [name for block in re.findall(r"\{([^}]*)\}", expr) for name in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", block)]
    grouped = [name.strip() for block in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr) for name in block.split(",")]
    return set(matchers + grouped)


def concrete(expr, values):
    """The expression Grafana sends: its $variables replaced."""
    text = expr.replace("$__rate_interval", "1m")
    for name, value in values.items():
        text = text.replace("$" + name, value)
    return text


def test_metric_names_leaves_out_functions_keywords_and_labels():
    expr = 'count(sum by (orch_name) (rate(a_total{mode!="idle", x=~"$v"}[$__rate_interval])) != 0) or vector(0) - b_bytes'
    assert metric_names(expr) == {"a_total", "b_bytes"}
    assert label_names(expr) == {"orch_name", "mode", "x"}


# ------------------------------------------------------------------ the dashboards


def test_orch_ships_two_dashboards_with_their_uids_and_titles():
    boards = dashboards()
    assert sorted(boards) == ["benchmark-progress.json", "service-resources.json"]
    assert {(b["uid"], b["title"]) for b in boards.values()} == {
        ("orch-service-resources", "orch: service resources"),
        ("orch-benchmark-progress", "orch: benchmark progress"),
    }
    for board in boards.values():
        assert board["schemaVersion"] == 39 and board["time"] == {"from": "now-1h", "to": "now"} and board["refresh"] == "10s"
        assert board["id"] is None  # provisioned: Grafana gives it its own
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", ["service-resources.json", "benchmark-progress.json"])
def test_every_panel_target_and_variable_uses_the_orch_prometheus_datasource(name):
    board = dashboards()[name]
    sources = [panel["datasource"] for panel in board["panels"]]
    sources += [target["datasource"] for panel in board["panels"] for target in panel["targets"]]
    sources += [variable["datasource"] for variable in board["templating"]["list"]]
    assert sources and all(source == {"type": "prometheus", "uid": "orch-prometheus"} for source in sources)


@pytest.mark.parametrize("name", ["service-resources.json", "benchmark-progress.json"])
def test_every_query_reads_only_the_contracts_metrics_and_labels(name):
    for expr in queries(dashboards()[name]):
        assert metric_names(expr) and metric_names(expr) <= CONTRACT_METRICS, expr
        assert label_names(expr) <= TARGET_LABELS | EXPORTER_LABELS, expr


def test_the_dashboards_cover_what_they_promise():
    resources, progress = dashboards()["service-resources.json"], dashboards()["benchmark-progress.json"]
    assert set().union(*map(metric_names, queries(resources))) == NODE_METRICS | CADVISOR_METRICS | {"up"}
    assert set().union(*map(metric_names, queries(progress))) >= CLIENT_METRICS | {"up"}
    assert any(re.fullmatch(r'up\{orch_role="client".*\}', expr) for expr in queries(progress))
    variables = {v["name"]: label_values(v) for v in resources["templating"]["list"]}
    assert variables["orch_name"][1] == "orch_name" and metric_names(variables["orch_name"][0]) == {"up"}


def test_node_metrics_the_dashboards_read_are_those_node_exporter_exposes(tmp_path):
    need("prometheus-node-exporter", "curl")
    port = free_port()
    with started(["prometheus-node-exporter", "--web.listen-address=127.0.0.1:%d" % port], tmp_path / "exporter.log"):
        text = wait_for_text("http://127.0.0.1:%d/metrics" % port, "node_cpu_seconds_total")
    exposed = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert NODE_METRICS <= exposed, NODE_METRICS - exposed


def test_every_query_runs_in_prometheus_against_a_target_with_orchs_labels(tmp_path):
    """A node_exporter whose textfile collector holds a running client's metrics, scraped by a real
    Prometheus with the target labels orch publishes: every dashboard query is valid PromQL, and
    every one that reads a metric this target has finds it, filtered by the dashboards' variables."""
    need("prometheus", "prometheus-node-exporter", "curl")
    labels = {"orch_run": "r1a2b3c4", "orch_name": "bench", "orch_role": "client", "orch_slurm_job": "4242"}
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    (textfiles / "orch.prom").write_text(
        "orch_client_running 1\norch_client_waiting 0\norch_client_sweep_point 2\n"
        "orch_client_started_timestamp_seconds %d\n" % time.time()
    )
    exporter_port, prometheus_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "node_exporter",
                            "static_configs": [{"targets": ["127.0.0.1:%d" % exporter_port], "labels": labels}]}],
    }))
    exporter = ["prometheus-node-exporter", "--web.listen-address=127.0.0.1:%d" % exporter_port,
                "--collector.textfile.directory=%s" % textfiles]
    prometheus = ["prometheus", "--config.file=%s" % config, "--storage.tsdb.path=%s" % (tmp_path / "data"),
                  "--web.listen-address=127.0.0.1:%d" % prometheus_port]
    base = "http://127.0.0.1:%d/api/v1/" % prometheus_port
    with started(exporter, tmp_path / "exporter.log"), started(prometheus, tmp_path / "prometheus.log"):
        wait_for_result(base, "rate(node_cpu_seconds_total[1m])", bound=60)
        present = NODE_METRICS | CLIENT_METRICS - {"orch_client_exit_code"} | {"up"}
        for name, board in dashboards().items():
            for variable in board["templating"]["list"]:
                selector, label = label_values(variable)
                found = http_json(base + "label/%s/values?%s" % (label, urllib.parse.urlencode({"match[]": concrete(selector, labels)})))
                assert found["data"] == [labels[label]], (name, variable["name"], found)
            for expr in queries(board):
                answer = http_json(base + "query?" + urllib.parse.urlencode({"query": concrete(expr, labels)}))
                assert answer["status"] == "success", (name, expr, answer)
                if metric_names(expr) <= present:
                    assert answer["data"]["result"], (name, expr)


class started:
    """A background process for the length of a ``with`` block; stopped (and waited for) whatever happens."""

    def __init__(self, argv, log):
        self.argv, self.log = argv, log

    def __enter__(self):
        self.handle = open(self.log, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self.handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self.proc

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.handle.close()


def wait_for_text(url, needle, bound=30):
    """The page's text once it holds ``needle`` (bounded)."""
    deadline = time.monotonic() + bound
    while True:
        result = subprocess.run(["curl", "-fsS", "--noproxy", "*", "--max-time", "5", url], capture_output=True, text=True)
        if needle in result.stdout:
            return result.stdout
        if time.monotonic() > deadline:
            pytest.fail("%s never held %s: %s" % (url, needle, result.stderr))
        time.sleep(0.2)


def wait_for_result(base, query, bound):
    """Wait until Prometheus answers ``query`` with data (two scrapes for a rate)."""
    deadline = time.monotonic() + bound
    while True:
        try:
            if http_json(base + "query?" + urllib.parse.urlencode({"query": query}))["data"]["result"]:
                return
        except OSError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            pytest.fail("Prometheus had no data for %s after %d s" % (query, bound))
        time.sleep(0.25)


# ------------------------------------------------------------------ the rendered script


def grafana_recipe(datasources=(), **fields):
    """A Grafana recipe's text: ``fields`` as given, ``datasources`` (a list of mappings) in block style."""
    data = {"name": "grafana", "health_check": {"timeout": 10, "retries": 10, "interval": 1}}
    data.update(fields)
    lines = [to_yaml("service", data).rstrip("\n")]
    if datasources:
        lines.append("  datasources:")
    for source in datasources:
        items = ["%s: %s" % (key, value if isinstance(value, int) else yaml_scalar(value)) for key, value in source.items()]
        lines.append("    - " + "\n      ".join(items))
    return "\n".join(lines) + "\n"


def rendered(text, runtime="host"):
    return render_job(parse_job(text, site="local", runtime=runtime))


SCRIPTS = {
    "shipped recipe": None,
    "defaults": grafana_recipe(),
    "own prometheus service, no orch dashboards": grafana_recipe(prometheus_service="metrics", orch_dashboards=False),
    "recipe datasources and dashboards": grafana_recipe(
        datasources=[{"name": "by service", "service_id": "prom_abc", "port": 9091}, {"name": "by url", "url": "http://h:9090"}],
        dashboards=["$HOME/dashboards", "my board.json"],
    ),
}


@pytest.mark.parametrize("runtime", ["host", "apptainer"])
@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_grafana_scripts_parse_and_pass_shellcheck(case, runtime):
    from conftest import ROOT

    text = SCRIPTS[case] or (ROOT / "recipes" / "services" / "grafana.yaml").read_text()
    script = rendered(text, runtime)
    assert bash_syntax(script) == ""
    assert shellcheck(script) == ""


@settings(max_examples=25)
@given(name=hostile_values.filter(bool), path=hostile_values.filter(bool))
def test_hostile_datasource_names_and_dashboard_paths_render_clean_scripts(name, path):
    script = rendered(grafana_recipe(datasources=[{"name": name, "url": "http://h:1"}], dashboards=[path]))
    assert bash_syntax(script) == ""
    assert shellcheck(script) == ""


def test_the_default_datasource_waits_for_prometheus_bounded_by_the_health_timeout():
    script = rendered(grafana_recipe(health_check={"timeout": 42, "retries": 1, "interval": 1}))
    assert 'orch_file="$ORCH_ENDPOINTS_DIR"/prometheus.json' in script
    wait = next(line for line in script.splitlines() if line.startswith('until [ -s "$orch_file" ]'))
    assert "-gt 42 ]; do sleep 1; done" in wait  # whole seconds: never less than the bound


def test_the_script_carries_the_shipped_dashboards_unless_told_not_to():
    with_them, without = rendered(grafana_recipe()), rendered(grafana_recipe(orch_dashboards=False))
    for name, text in shipped_dashboards():
        assert '"$ORCH_RUN_DIR/grafana/dashboards"/%s' % name in with_them and text in with_them.splitlines()
        assert name not in without


def test_prometheus_service_must_be_a_service_name():
    with pytest.raises(RecipeError) as caught:
        parse_job(grafana_recipe(prometheus_service="a b; rm -rf /"), site="local", runtime="host")
    assert [p.field for p in caught.value.problems] == ["service.prometheus_service"]


# ------------------------------------------------------------------ provisioning, run for real

# grafana-server as far as orch's script can tell (answers /api/health, records what it was given): the same
# stand-in the charliecloud test image carries (scripts/build-images)
STAND_IN = (ROOT / "scripts" / "images" / "grafana-server").read_text().replace("#!/usr/bin/env python3", "#!%(python)s", 1)


def endpoint_text(name, host, port):
    # the layout of the endpoint files services publish (orch.sections.ENDPOINT_FORMAT)
    return json.dumps({"name": name, "kind": "prometheus", "orch_id": "p1", "job_id": "", "host": host, "port": port,
                       "metrics_port": None, "run_dir": "/nowhere"}) + "\n"


def publish(endpoints, name, text):
    """Write an endpoint file as a service does: whole, by rename."""
    endpoints.mkdir(exist_ok=True)
    tmp = endpoints / (".%s.tmp" % name)
    tmp.write_text(text)
    tmp.rename(endpoints / ("%s.json" % name))


@pytest.fixture
def grafana(tmp_path, clean_env):
    """``grafana(recipe_text)``: a rendered (not started) Grafana run with the stand-in server on PATH."""
    need("curl")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "grafana-server"
    stand_in.write_text(STAND_IN % {"python": sys.executable})
    stand_in.chmod(0o755)
    env = dict(clean_env, PATH="%s:%s" % (bin_dir, clean_env.get("PATH", "")))
    made = []

    def make(recipe_text):
        base = tmp_path / ("grafana-%d" % len(made))
        base.mkdir()
        made.append(Run(base, "grafana", recipe_text, env))
        return made[-1]

    try:
        yield make
    finally:
        for run in made:
            run.kill_everything()


def seen_by_grafana(run):
    return json.loads((run.run_dir / "grafana" / "data" / "stand-in.json").read_text())


def datasources(seen):
    return YAML(typ="safe").load(seen["provisioning"]["datasources/orch.yaml"])["datasources"]


def test_grafana_starts_with_the_runs_prometheus_as_datasource_and_orchs_dashboards(grafana):
    port = free_port()
    run = grafana(grafana_recipe(ports=[port]))
    publish(run.endpoints, "prometheus", endpoint_text("prometheus", "127.0.0.1", 9393))
    run.start()
    endpoint = run.wait_ready(60)
    assert endpoint["port"] == port and endpoint["kind"] == "grafana"
    seen = seen_by_grafana(run)
    assert datasources(seen) == [{"name": "Prometheus", "type": "prometheus", "access": "proxy", "uid": "orch-prometheus",
                                  "url": "http://127.0.0.1:9393", "isDefault": True}]
    assert seen["dashboards"] == dashboards()
    assert seen["argv"] == ["--homepath=/usr/share/grafana"]
    stop_cleanly(run)


def test_grafana_waits_for_a_prometheus_that_publishes_later(grafana):
    run = grafana(grafana_recipe(ports=[free_port()], prometheus_service="metrics"))
    run.start()
    time.sleep(2.5)
    assert not (run.run_dir / "grafana" / "data" / "stand-in.json").exists()  # still waiting
    publish(run.endpoints, "metrics", endpoint_text("metrics", "node-7.cluster", 9191))
    run.wait_ready(60)
    assert [d["url"] for d in datasources(seen_by_grafana(run))] == ["http://node-7.cluster:9191"]
    stop_cleanly(run)


def test_grafana_starts_without_datasource_when_prometheus_never_comes(grafana):
    run = grafana(grafana_recipe(ports=[free_port()], health_check={"timeout": 2, "retries": 3, "interval": 1}))
    began = time.monotonic()
    run.start().wait_ready(60)
    assert time.monotonic() - began >= 2
    seen = seen_by_grafana(run)
    assert "datasources/orch.yaml" not in seen["provisioning"]
    assert "no endpoint from Prometheus service prometheus: no datasource provisioned" in run.log()
    assert sorted(seen["dashboards"]) == ["benchmark-progress.json", "service-resources.json"]
    stop_cleanly(run)


def test_grafana_stops_waiting_when_prometheus_failed(grafana):
    run = grafana(grafana_recipe(ports=[free_port()], health_check={"timeout": 300, "retries": 30, "interval": 1}))
    run.endpoints.mkdir()
    (run.endpoints / "prometheus.failed").write_text("prometheus exited with status 1\n")
    began = time.monotonic()
    run.start().wait_ready(60)
    assert time.monotonic() - began < 30
    assert "datasources/orch.yaml" not in seen_by_grafana(run)["provisioning"]
    stop_cleanly(run)


def test_recipe_dashboards_come_beside_or_instead_of_orchs(grafana, tmp_path):
    own = tmp_path / "my board.json"
    own.write_text('{"uid": "mine", "title": "mine"}')
    beside = grafana(grafana_recipe(ports=[free_port()], dashboards=[str(own)]))
    instead = grafana(grafana_recipe(ports=[free_port()], dashboards=[str(own)], orch_dashboards=False))
    for run in (beside, instead):
        publish(run.endpoints, "prometheus", endpoint_text("prometheus", "127.0.0.1", 9090))
        run.start().wait_ready(60)
    assert sorted(seen_by_grafana(beside)["dashboards"]) == ["benchmark-progress.json", "my board.json", "service-resources.json"]
    assert sorted(seen_by_grafana(instead)["dashboards"]) == ["my board.json"]
    for run in (beside, instead):
        stop_cleanly(run)


def test_hostile_recipe_values_stay_inert_when_the_provisioning_runs(grafana, tmp_path):
    pwned = tmp_path / "pwned"
    hostile = ["-n ", "$(touch %s)" % pwned, "`touch %s`" % pwned, "'; touch %s; '" % pwned, '"; touch %s; "' % pwned,
               "a\ntouch %s" % pwned, "ORCH_EOF", "\\", "*"]
    name, path = " | ".join(hostile), "".join(hostile)
    run = grafana(grafana_recipe(ports=[free_port()], datasources=[{"name": name, "url": "http://127.0.0.1:1"}], dashboards=[path]))
    run.start()
    # the dashboard path names no file: the job fails there, saying so, before Grafana starts
    assert run.wait_exit(60) == 1, run.log()
    assert json.loads((run.run_dir / "state" / "finished").read_text())["reason"] == "dashboard not found: " + path.replace("\n", " ")
    written = (run.run_dir / "grafana" / "provisioning" / "datasources" / "orch.yaml").read_text()
    assert [d["name"] for d in YAML(typ="safe").load(written)["datasources"]] == [name]
    assert not pwned.exists()
