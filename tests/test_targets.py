"""A client's target: ``target_service.port`` is checked (never silently dropped, never used to connect),
and a ``target_endpoint`` URL counts whole: its scheme and its path reach the probes and the load generator."""
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orch import render_job
from orch.errors import RecipeError
from orch.recipe import parse_job
from orch.runs import aimed


def client(extra, kind="ollama_benchmark"):
    return "client:\n  name: %s\n%s" % (kind, extra)


def script_of(text, **options):
    return render_job(parse_job(text, "r.yaml", **options))


# ------------------------------------------------------------------ target_service.port


def test_a_stated_port_that_is_not_the_urls_is_a_problem_at_its_line():
    text = client("  target_endpoint: https://gpu7.example/ollama\n  target_service:\n    name: ollama\n    port: 11434\n")
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (6, "client.target_service.port")
    assert problem.message == "11434, but target_endpoint 'https://gpu7.example/ollama' is port 443: write the port in the URL"


def test_a_stated_port_that_is_the_urls_is_fine():
    job = parse_job(client("  target_endpoint: https://gpu7.example:11434\n  target_service:\n    port: 11434\n"))
    assert (job.target.host, job.target.port) == ("gpu7.example", 11434)


def test_the_named_service_must_publish_the_stated_port(tmp_path):
    """A real run: the endpoint file says 6380, the recipe 6379. The client fails at once, saying both."""
    endpoints = tmp_path / "endpoints"
    endpoints.mkdir()
    (endpoints / "redis.json").write_text(json.dumps({"name": "redis", "host": "127.0.0.1", "port": 6380}) + "\n")
    text = client("  target_service:\n    name: redis\n    port: 6379\n", kind="redis_benchmark")
    script = tmp_path / "job.sh"
    script.write_text(script_of(text, site="local", runtime="host", python=sys.executable,
                                run_dir=str(tmp_path / "run"), endpoints_dir=str(endpoints)))
    began = time.monotonic()
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert time.monotonic() - began < 60, "it waited instead of failing at once"
    assert done.returncode == 1, done.stderr
    finished = json.loads((tmp_path / "run" / "state" / "finished").read_text())
    assert finished["reason"] == "service redis publishes port 6380, not target_service.port 6379"


def test_a_client_aimed_at_a_given_service_job_loads_it_wherever_it_published():
    # experiments and `orch submit --target` aim the client at one service job: the recipe's port was about another
    job = parse_job(client("  target_service:\n    name: redis\n    port: 6379\n", kind="redis_benchmark"))
    assert "not target_service.port 6379" in render_job(job)
    record = {"id": "r1", "role": "service", "remote": None, "kind": "redis", "endpoints_dir": "e", "job_name": "redis_r1",
              "job_id": "12"}
    by_run, _ = aimed(job, record, None, None, ())
    by_url, _ = aimed(job, None, "http://cache7:7000", None, ())
    for aimed_job in (by_run, by_url):
        assert "target_service.port" not in render_job(aimed_job)


# ------------------------------------------------------------------ target_endpoint: scheme and path


def test_an_https_url_with_a_path_is_the_base_of_the_probes_and_of_the_load_generator():
    script = script_of(client("  target_endpoint: https://gpu7.example:8443/ollama/\n"))
    assert "TARGET_URL='https://gpu7.example:8443/ollama'\n" in script
    assert '"$TARGET_URL"/api/tags' in script
    assert '-m orch.clients.ollama_benchmark --host "$TARGET_HOST" --port "$TARGET_PORT" --duration 60 --url "$TARGET_URL" ' in script


def test_the_http_load_generators_get_the_base_url_and_the_tcp_ones_do_not():
    assert '--url "$TARGET_URL"' in script_of(client("", kind="chroma_benchmark"))
    for kind in ("redis_benchmark", "mysql_benchmark", "pgbench"):
        assert "--url" not in script_of(client("", kind=kind)), kind


def test_a_url_with_a_query_is_refused():
    with pytest.raises(RecipeError, match="r.yaml:3: client.target_endpoint: 'http://h/x\\?a=1': give the base URL alone"):
        parse_job(client("  target_endpoint: http://h/x?a=1\n"), "r.yaml")


class FakeOllama(BaseHTTPRequestHandler):
    """Ollama's API under /base only, as behind a proxy with a path prefix; every path asked is kept."""

    seen = []

    def do_GET(self):
        self.seen.append(self.path)
        if self.path == "/base/api/tags":
            return self.reply(b'{"models": [{"name": "m"}]}')
        self.send_error(404)

    def do_POST(self):
        self.seen.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/base/api/generate":
            return self.send_error(404)
        lines = [{"model": "m", "response": " t%d" % k, "done": False} for k in range(3)]
        lines.append({"model": "m", "response": "", "done": True, "done_reason": "length", "eval_count": 3,
                      "prompt_eval_count": 5})
        self.reply(b"".join(json.dumps(line).encode() + b"\n" for line in lines), "application/x-ndjson")

    def reply(self, body, kind="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_ollama(tmp_path):
    """``(port, certificate)``: a fake Ollama over TLS on loopback, with a certificate made for it."""
    import ssl

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    FakeOllama.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()


def test_a_client_loads_an_https_service_under_its_path(tmp_path, https_ollama, clean_env):
    port, cert = https_ollama
    text = client("  target_endpoint: https://127.0.0.1:%d/base\n  duration: 20\n"
                  "  parameters:\n    model: m\n    num_requests: 3\n    max_tokens: 3\n" % port)
    script = tmp_path / "job.sh"
    script.write_text(script_of(text, site="local", runtime="host", python=sys.executable,
                                run_dir=str(tmp_path / "run"), endpoints_dir=str(tmp_path / "endpoints")))
    # the node trusts the service's certificate: curl (the probe) and Python (the load generator) alike
    env = dict(clean_env, CURL_CA_BUNDLE=str(cert), SSL_CERT_FILE=str(cert))
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    [result] = [p for p in Path(tmp_path / "run" / "results").glob("*.json") if not p.name.startswith(".")]
    document = json.loads(result.read_text())
    assert document["target"]["url"] == "https://127.0.0.1:%d/base/api/generate" % port
    assert document["counts"]["completed"] == 3
    assert FakeOllama.seen and all(path.startswith("/base/") for path in FakeOllama.seen), FakeOllama.seen
