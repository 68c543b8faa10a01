"""A service's readiness: when the job gives up, what ``health_check.endpoint`` means for each kind,
and several checks each bounded on its own.

The timing tests run the rendered script with bash (host runtime, local site) against a service that
never answers; their bounds are one-sided where the cause guarantees them and generous elsewhere.
"""
import re
import time

import pytest

from orch import parse_job, render_job
from orch.errors import RecipeError
from test_services import free_port, need, runs, stop_cleanly  # noqa: F401 (runs is a fixture)

NEVER_READY = """service:
  name: redis
  ports: [%(port)d]
  command: sleep
  args: ["300"]
  health_check: {timeout: %(timeout)d, retries: %(retries)d, interval: 1}
"""


@pytest.mark.parametrize("timeout, retries, reason", [
    pytest.param(3, 1000, r"redis not ready in \d+ s \(health_check\.timeout: 3 s; \d+ checks at the interval\)", id="timeout-first"),
    pytest.param(1000, 3, r"redis not ready after 3 checks in \d+ s \(health_check\.retries: 3\)", id="retries-first"),
])
def test_readiness_gives_up_at_whichever_limit_comes_first(runs, timeout, retries, reason):
    need("redis-cli")
    run = runs("redis", NEVER_READY % {"port": free_port(), "timeout": timeout, "retries": retries})
    # the larger limit is 1000 s: a job that waited for both would still be waiting
    status = run.wait_exit(90)
    elapsed = time.monotonic() - run.started
    print("gave up after %.2f s" % elapsed)
    assert status == 1, run.log()
    assert elapsed >= 3, "gave up after %.2f s, before the smaller limit (3 s)" % elapsed
    assert re.fullmatch(reason, run.finished()["reason"]), run.finished()
    assert not (run.endpoints / "redis.json").exists()
    assert not run.leftovers(), "left running: %s" % run.leftovers(0)


# ------------------------------------------------------------------ health_check.endpoint, one rule


def probe_line(text):
    script = render_job(parse_job(text, "r.yaml", site="local", runtime="host"))
    return next(line for line in script.splitlines() if line.startswith("orch_probe()"))


def service(kind, endpoint, port=None):
    ports = "  ports: [%d]\n" % port if port else ""
    return "service:\n  name: %s\n%s  health_check:\n    endpoint: %s\n" % (kind, ports, endpoint)


LOCAL = '"http://$ORCH_LOCAL:%d"'

# (id, kind, endpoint, ports[0] or None, the URLs the check asks, in order)
CHECKED = [
    ("ollama-path", "ollama", "/api/version", None, [LOCAL % 11434 + "/api/version"]),
    ("prometheus-path-own-port", "prometheus", "/-/healthy", 9191, [LOCAL % 9191 + "/-/healthy"]),
    ("grafana-path", "grafana", "/healthz", 3001, [LOCAL % 3001 + "/healthz"]),
    ("chroma-path-replaces-the-default", "chroma", "/api/v2/version", None, [LOCAL % 8000 + "/api/v2/version"]),
    ("ollama-url-as-written", "ollama", "https://gpu7.example:8443/ollama/api/tags", None,
     ["https://gpu7.example:8443/ollama/api/tags"]),
    ("chroma-url-as-written", "chroma", "http://proxy.example/chroma/api/v2/heartbeat", None,
     ["http://proxy.example/chroma/api/v2/heartbeat"]),
    ("localhost-url-on-the-services-port", "grafana", "http://localhost:3000/api/health", None, ["http://localhost:3000/api/health"]),
    ("chroma-seed-v1-path-asks-v2-too", "chroma", "/api/v1/heartbeat", 8001,
     [LOCAL % 8001 + "/api/v2/heartbeat", LOCAL % 8001 + "/api/v1/heartbeat"]),
    ("chroma-seed-v1-url-asks-v2-too", "chroma", "http://localhost:8000/api/v1/heartbeat", None,
     ["http://localhost:8000/api/v2/heartbeat", "http://localhost:8000/api/v1/heartbeat"]),
]


@pytest.mark.parametrize("kind, endpoint, port, urls", [row[1:] for row in CHECKED], ids=[row[0] for row in CHECKED])
def test_an_endpoint_path_is_on_the_service_itself_and_a_url_is_checked_as_written(kind, endpoint, port, urls):
    line = probe_line(service(kind, endpoint, port))
    assert re.findall(r"--max-time 5 (\S+) >/dev/null", line) == urls, line


# (id, kind, endpoint, ports[0] or None, the message's words)
REFUSED = [
    ("localhost-url-of-another-port", "ollama", "http://localhost:11434/api/tags", 11435,
     "'http://localhost:11434/api/tags' is this node at port 11434, but the service listens on 11435: write the path alone (/api/tags)"),
    ("loopback-url-default-port", "chroma", "http://127.0.0.1/api/v2/heartbeat", None, "is this node at port 80"),
    ("neither-path-nor-url", "prometheus", "-/ready", None, "'-/ready' is neither a path (/...) nor an http(s) URL with a host"),
    ("not-http", "grafana", "ftp://h/x", None, "nor an http(s) URL"),
    ("redis-path", "redis", "/ping", None, "redis is checked with its own client on its own port, not over HTTP: leave endpoint out"),
    ("redis-http-url", "redis", "http://localhost:6379/", None, "not over HTTP"),
    ("mysql-http-url", "mysql", "http://db7:3306/health", None, "mysql is checked with its own client"),
    ("postgres-path", "postgres", "/health", None, "postgres is checked with its own client"),
    ("redis-url-of-another-port", "redis", "redis://localhost:6379", 6380, "is this node at port 6379, but the service listens on 6380"),
    ("redis-url-of-another-host", "redis", "redis://cache7:6379", None, "not over HTTP"),
]


@pytest.mark.parametrize("kind, endpoint, port, words", [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED])
def test_an_endpoint_that_cannot_be_the_check_is_refused_at_its_line(kind, endpoint, port, words):
    with pytest.raises(RecipeError) as caught:
        parse_job(service(kind, endpoint, port), "r.yaml")
    line = 5 if port else 4
    assert [(p.line, p.field) for p in caught.value.problems] == [(line, "service.health_check.endpoint")], caught.value.problems
    assert words in caught.value.problems[0].message


@pytest.mark.parametrize("kind, endpoint", [("redis", "redis://localhost:6379"), ("mysql", "mysql://127.0.0.1:3306/db"),
                                            ("postgres", "postgresql://localhost")])
def test_a_url_of_the_kinds_own_scheme_on_itself_is_its_own_check(kind, endpoint):
    assert probe_line(service(kind, endpoint)) == probe_line("service:\n  name: %s\n" % kind)


def test_the_seeds_endpoints_still_load():
    from conftest import SEED_STYLE

    for path in SEED_STYLE:
        parse_job(path.read_text(), str(path))
        if "monitoring:" in path.read_text():
            parse_job(path.read_text(), str(path), part="monitoring")


def test_a_path_endpoint_is_what_a_real_service_is_checked_on(runs):
    """An HTTP server that has no /api/tags: ready only because its recipe's path is asked, on its own port."""
    port = free_port()
    text = ("service:\n  name: ollama\n  ports: [%d]\n  command: python3\n"
            "  args: [\"-m\", \"http.server\", \"%d\", \"--bind\", \"127.0.0.1\"]\n"
            "  health_check: {endpoint: /ready.txt, timeout: 30, retries: 30, interval: 1}\n") % (port, port)
    run = runs("ollama", text)
    (run.base / "ready.txt").write_text("ok\n")  # the server serves its working directory, the run's base
    endpoint = run.wait_ready(40)
    assert endpoint["port"] == port
    stop_cleanly(run)


# ------------------------------------------------------------------ several checks, each bounded on its own

SLOW_V1_CHROMA = '''import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(30 if self.path == "/api/v2/heartbeat" else 2)  # v2 hangs; v1 answers, slowly
        self.send_response(200 if self.path == "/api/v1/heartbeat" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


def test_each_url_of_a_two_url_check_gets_its_own_bound(runs, tmp_path):
    """The first URL hangs past curl's 5 s; the second answers in 2 s: it must be given them."""
    need("curl")
    stand_in = tmp_path / "slow_chroma.py"
    stand_in.write_text(SLOW_V1_CHROMA)
    port = free_port()
    text = ("service:\n  name: chroma\n  ports: [%d]\n  command: python3\n  args: [\"%s\", \"%d\"]\n"
            "  health_check: {endpoint: /api/v1/heartbeat, timeout: 60, retries: 6, interval: 5}\n") % (port, stand_in, port)
    run = runs("chroma", text)
    run.wait_ready(50)
    stop_cleanly(run)
