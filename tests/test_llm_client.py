"""The LLM streaming client (orch.clients.ollama_benchmark / llm_benchmark) against tests/llm_server.py."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llm_server import running_server  # noqa: E402

from orch.clients import llm_benchmark, ollama_benchmark  # noqa: E402
from orch.results import read_document  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY_KEYS = {"n", "p50", "p90", "p95", "p99", "max"}


@pytest.fixture(scope="module")
def server():
    with running_server(lifetime=120) as port:
        yield port


def run_client(port, tmp_path, model, *extra, api="generate", name="out"):
    output = str(tmp_path / (name + ".json"))
    argv = ["--host", "127.0.0.1", "--port", str(port), "--duration", "30", "--model", model,
            "--api", api, "--output", output] + [str(word) for word in extra]
    status = ollama_benchmark.main(argv)
    document = read_document(output)
    with open(os.path.join(os.path.dirname(output), document["raw"]["requests"]), encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle]
    return status, document, lines


def stats(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/__stats" % port, timeout=5) as response:
        return json.load(response)


@pytest.mark.parametrize("api", ["generate", "chat", "openai"])
def test_ttft_and_inter_token_latency_match_the_injected_delays(server, tmp_path, api):
    model = "mock?ttft_ms=50&itl_ms=10&tokens=20&tail_ms=30&t=%s" % api
    status, doc, lines = run_client(server, tmp_path, model, "--num-requests", 24, "--concurrency", 4,
                                    "--warmup", 2, api=api)
    assert status == 0 and doc["run"]["partial"] is False
    latency = doc["latency"]
    assert abs(latency["ttft_ms"]["p50"] - 50) <= 2, latency["ttft_ms"]
    assert abs(latency["tpot_ms"]["p50"] - 10) <= 2, latency["tpot_ms"]
    assert abs(latency["icl_ms"]["p50"] - 10) <= 2, latency["icl_ms"]
    # e2el ends at the last token (50 + 19*10 = 240 ms), not at the done object / [DONE] 30 ms later
    assert abs(latency["e2el_ms"]["p50"] - 240) <= 4, latency["e2el_ms"]
    assert latency["ttft_ms"]["n"] == 24 and latency["icl_ms"]["n"] == 24 * 19
    measured = [line for line in lines if not line["warmup"]]
    assert len(measured) == 24 and sum(line["warmup"] for line in lines) == 2
    for line in measured:
        assert line["out_tokens"] == 20 and len(line["chunk_offsets_ms"]) == 20
        assert line["t_end"] - line["t_last_token"] >= 25  # the tail is not in e2el
    assert doc["domain"]["tokens"]["source"] == ("server_usage" if api == "openai" else "eval_count")


def test_role_only_first_sse_chunk_is_not_the_first_token(server, tmp_path):
    status, doc, lines = run_client(server, tmp_path, "mock?ttft_ms=40&itl_ms=5&tokens=5&tail_ms=40&t=role",
                                    "--num-requests", 4, api="openai")
    assert status == 0
    for line in lines:
        # the role chunk arrives with the headers (~0 ms); the first token 40 ms later
        assert line["t_first_token"] - line["t_send"] >= 38
        assert line["t_end"] - line["t_last_token"] >= 35
    assert doc["latency"]["ttft_ms"]["min"] >= 38


@pytest.mark.parametrize("api", ["chat", "openai"])
def test_reasoning_chunks_count_as_the_first_token(server, tmp_path, api):
    status, doc, _ = run_client(server, tmp_path, "mock?ttft_ms=30&itl_ms=20&tokens=6&think=3&t=think%s" % api,
                                "--num-requests", 3, api=api)
    assert status == 0
    assert abs(doc["latency"]["ttft_ms"]["p50"] - 30) <= 4  # not 30 + 3*20 (the first content token)


@pytest.mark.parametrize("api", ["generate", "openai"])
def test_failures_and_timeouts_are_counted_not_crashed_on(server, tmp_path, api):
    # of 20 requests: every 4th gets HTTP 500 (5), every 5th stalls 3 s past a 0.5 s timeout (5, 10, 15)
    model = "mock?tokens=5&itl_ms=1&fail_every=4&stall_every=5&stall_s=3&t=fail%s" % api
    status, doc, lines = run_client(server, tmp_path, model, "--num-requests", 20, "--concurrency", 4,
                                    "--timeout", 0.5, api=api)
    assert status == 0
    assert doc["schema"] == "orch.result/1" and doc["run"]["partial"] is False
    counts = doc["counts"]
    assert counts["sent"] == 20 and counts["completed"] == 12 and counts["failed"] == 8
    assert counts["timeouts"] == 3 and counts["errors"]["timeout"] == 3
    assert sum(n for message, n in counts["errors"].items() if message.startswith("HTTP 500")) == 5
    assert sorted(line["status"] for line in lines).count("ok") == 12
    assert doc["latency"]["ttft_ms"]["n"] == 12
    assert doc["raw"]["requests"].endswith(".requests.jsonl")
    for key in ("ttft_ms", "tpot_ms", "icl_ms", "e2el_ms", "e2el_intended_ms"):
        assert SUMMARY_KEYS <= set(doc["latency"][key])
    assert doc["throughput"]["requests_per_s"] > 0 and doc["throughput"]["output_tokens_per_s"] > 0
    assert doc["window"]["duration_s"] > 0 and doc["window"]["end_epoch"] > doc["window"]["start_epoch"]


def test_every_request_failing_exits_1_with_a_document(server, tmp_path):
    status, doc, lines = run_client(server, tmp_path, "mock?fail_every=1&t=allfail", "--num-requests", 3)
    assert status == 1
    assert doc["counts"]["failed"] == 3 and doc["counts"]["completed"] == 0 and doc["run"]["partial"] is False
    assert doc["latency"]["ttft_ms"] is None and len(lines) == 3


def test_options_reach_the_server(server, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "why is the sky blue"}\nplain line prompt\n"a json string"\n')
    status, doc, lines = run_client(server, tmp_path, "mock?tokens=50&t=opts", "--num-requests", 3,
                                    "--max-tokens", 5, "--seed", 7, "--prompts-file", str(prompts))
    assert status == 0 and [line["out_tokens"] for line in lines] == [5, 5, 5]
    body = stats(server)["last_body"]["/api/generate"]
    assert body["options"] == {"num_predict": 5, "seed": 7} and body["stream"] is True
    assert body["prompt"] in ("why is the sky blue", "plain line prompt", "a json string")
    status, doc, _ = run_client(server, tmp_path, "mock?tokens=50&t=opts", "--num-requests", 1,
                                "--max-tokens", 4, "--prompt-length", 9, api="openai", name="openai")
    body = stats(server)["last_body"]["/v1/chat/completions"]
    assert body["max_tokens"] == 4 and body["stream_options"] == {"include_usage": True}
    assert len(body["messages"][0]["content"].split()) == 9
    assert "words" in doc["domain"]["workload"]["prompts"]["length_unit"]


def test_llm_benchmark_defaults_to_the_openai_api_and_discovers_the_model(server, tmp_path):
    output = str(tmp_path / "llm.json")
    status = llm_benchmark.main(["--host", "127.0.0.1", "--port", str(server), "--duration", "10",
                                 "--num-requests", "2", "--output", output])
    doc = read_document(output)
    assert status == 0 and doc["run"]["client"] == "llm_benchmark"
    assert doc["domain"]["api"] == "openai" and doc["domain"]["model"] == "mock"
    assert doc["counts"]["completed"] == 2


def test_sigterm_mid_run_writes_a_partial_document(server, tmp_path):
    output = str(tmp_path / "term.json")
    model = "mock?tokens=50&itl_ms=20&t=term"  # 1 s per request
    proc = subprocess.Popen(
        [sys.executable, "-m", "orch.clients.ollama_benchmark", "--host", "127.0.0.1", "--port", str(server),
         "--duration", "60", "--model", model, "--num-requests", "100", "--concurrency", "4", "--output", output],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while stats(server)["requests"].get(model, 0) < 8:  # the first 4 are done, the next 4 in flight
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert status == 143
    doc = read_document(output)
    counts = doc["counts"]
    assert doc["run"]["partial"] is True
    assert counts["completed"] >= 4 and counts["cancelled"] >= 1 and counts["failed"] == 0
    assert counts["sent"] == counts["completed"] + counts["cancelled"]
    assert doc["latency"]["ttft_ms"]["n"] == counts["completed"]
    with open(str(tmp_path / "term.requests.jsonl"), encoding="utf-8") as handle:
        statuses = [json.loads(line)["status"] for line in handle]
    assert statuses.count("ok") == counts["completed"] and "cancelled" in statuses


def test_open_loop_achieves_the_offered_rate(server, tmp_path):
    status, doc, lines = run_client(server, tmp_path, "mock?tokens=3&t=open", "--request-rate", 100,
                                    "--num-requests", 200, "--seed", 1)
    assert status == 0 and doc["counts"]["completed"] == 200
    fidelity = doc["domain"]["fidelity"]
    assert fidelity["offered_rps"] == 100
    assert abs(fidelity["achieved_rps"] - 100) <= 5, fidelity
    assert abs(doc["throughput"]["requests_per_s"] - 100) <= 5, doc["throughput"]
    assert doc["domain"]["workload"]["loop"] == "open" and fidelity["send_lag_ms"]["n"] == 200
    assert doc["latency"]["e2el_intended_ms"]["n"] == 200
    intended = [line["t_intended"] for line in lines]
    assert intended == sorted(intended) and intended[0] == 0.0
    assert abs(intended[-1] - 1990.0) < 0.01  # 199 gaps rescaled to exactly 1/100 s on average


def test_poisson_schedule_is_seeded_and_exact():
    a = ollama_benchmark.arrival_offsets_ns(1000, 50.0, "poisson", 3)
    assert a == ollama_benchmark.arrival_offsets_ns(1000, 50.0, "poisson", 3)
    assert a != ollama_benchmark.arrival_offsets_ns(1000, 50.0, "poisson", 4)
    assert abs(a[-1] - 999 / 50.0 * 1e9) < 1e3
    gaps = [b - x for x, b in zip(a, a[1:])]
    assert max(gaps) > 3 * min(gaps) + 1


def test_the_kind_renders_the_new_flags():
    from orch import render_job
    from orch.recipe import parse_job

    script = render_job(parse_job(
        "client:\n  name: ollama_benchmark\n  target_endpoint: http://mel2073:11434\n  parameters:\n"
        "    request_rate: 0.5,2\n    warmup: 3\n    api: openai\n    timeout: 30\n"))
    assert "--request-rate 0.5 --warmup 3 --timeout 30" in script.replace("--api openai ", "")
    assert "--request-rate 2 " in script
