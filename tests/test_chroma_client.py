"""orch's Chroma load generator (orch.clients.chroma_benchmark) against a real Chroma, and its pure
parts without one (chroma_vectors, chroma_api, chroma_results).

The server is the project's own: the shipped chroma recipe rendered for the
``host`` runtime on a free loopback port and run with bash (tests/test_services.py's
Run), once for the module. The client runs as ``python -m orch.clients.chroma_benchmark``
in a subprocess, as a client job would run it. Skips when chroma is missing,
unless CI is set (then it fails), like tests/test_services.py.
"""
import os
import signal
import subprocess
import sys
import time
import urllib.request

import argparse
import base64

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ROOT
from test_services import Run, chroma_bin, free_port, http_json, need, shipped, with_port

from orch.clients import chroma_api, chroma_results, chroma_vectors
from orch.clients.chroma_vectors import distances, ground_truth, make_vectors, recall_at_k
from orch.results import SCHEMA, new_document, read_document

COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


# ------------------------------------------------------------------ the maths, no server


@pytest.mark.parametrize("distance", ["l2", "cosine", "ip"])
def test_ground_truth_is_the_brute_force_neighbours_in_the_metric(distance):
    data, queries = make_vectors(7, 500, 20, 8, distance)
    indices, kth = ground_truth(queries, data, 5, distance)
    for i, q in enumerate(queries):
        if distance == "l2":
            true = ((data - q) ** 2).sum(1)
        elif distance == "cosine":
            true = 1 - data @ q / (np.linalg.norm(data, axis=1) * np.linalg.norm(q))
        else:
            true = 1 - data @ q
        assert list(indices[i]) == list(np.argsort(true, kind="stable")[:5])
        assert kth[i] == pytest.approx(np.sort(true)[4], rel=1e-6, abs=1e-9)
    assert recall_at_k(queries, data, indices.tolist(), 5, distance)[0] == 1.0


def test_recall_counts_ties_and_only_true_neighbours():
    data = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    query = np.array([[0.0, 0.0]])
    # rows 1, 2, 3 tie at distance 1: any two of them with row 0 make a perfect top-3
    assert recall_at_k(query, data, [[0, 3, 2]], 3, "l2")[0] == 1.0
    assert recall_at_k(query, data, [[0, 4, 2]], 3, "l2")[0] == pytest.approx(2 / 3)
    # k above the collection size: recall is out of what exists
    assert recall_at_k(query, data[:2], [[0, 1]], 10, "l2")[0] == 1.0


def test_query_vectors_are_not_copies_of_the_data_and_the_seed_repeats():
    data, queries = make_vectors(3, 1000, 50, 16, "l2")
    again, _ = make_vectors(3, 1000, 50, 16, "l2")
    assert np.array_equal(data, again)
    assert distances(queries, data, "l2").min() > 1e-3


def test_recall_on_a_tiny_example_checked_by_hand():
    # squared L2 from 0.4 to 0, 1, 2, 3, 10: 0.16, 0.36, 2.56, 6.76, 92.16; the true top 2 are rows 0 and 1
    data = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    query = np.array([[0.4]])
    indices, kth = ground_truth(query, data, 2, "l2")
    assert indices.tolist() == [[0, 1]] and kth.tolist() == [pytest.approx(0.36)]
    assert recall_at_k(query, data, [[1, 0]], 2, "l2") == (1.0, [1.0])  # order does not matter
    assert recall_at_k(query, data, [[0, 2]], 2, "l2") == (0.5, [0.5])  # 2.56 > 0.36 + 1e-3
    assert recall_at_k(query, data, [[4]], 2, "l2") == (0.0, [0.0])  # fewer than k returned, none right
    assert recall_at_k(query, data, [[]], 2, "l2") == (0.0, [0.0])
    assert recall_at_k(query, data, [], 2, "l2") == (None, [])
    # two queries: the mean of their recalls
    two = np.array([[0.4], [9.0]])
    assert recall_at_k(two, data, [[0, 1], [4, 2]], 2, "l2") == (0.75, [1.0, 0.5])
    # ip is 1 - dot (the nearest is the largest dot), cosine 1 - cos
    assert distances(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 1.0]]), "ip").tolist() == [[-1.0, 1.0]]
    with pytest.raises(ValueError):
        distances(query, data, "manhattan")


@given(st.integers(1, 40), st.integers(1, 12), st.integers(1, 4), st.integers(1, 8), st.sampled_from(["l2", "cosine", "ip"]),
       st.integers(0, 2**16), st.integers(1, 64))
def test_blocked_ground_truth_is_brute_force_whatever_the_block(n, nq, dim, k, distance, seed, block):
    data, queries = make_vectors(seed, n, nq, dim, distance)
    full = distances(queries, data, distance)
    saved = chroma_vectors.GT_BLOCK
    chroma_vectors.GT_BLOCK = block  # a few queries per block: the blocking itself is exercised
    try:
        indices, kth = ground_truth(queries, data, k, distance)
    finally:
        chroma_vectors.GT_BLOCK = saved
    expected = np.sort(full, axis=1)[:, :min(k, n)]
    assert indices.shape == (nq, min(k, n))
    assert np.allclose(np.take_along_axis(full, indices, axis=1), expected)
    assert np.allclose(kth, expected[:, -1])
    assert recall_at_k(queries, data, indices.tolist(), k, distance)[0] == 1.0


def test_request_bodies_for_chromas_v2_api():
    assert chroma_api.api_base("::1", 8000) == "http://[::1]:8000/api/v2"
    assert chroma_api.collections_url("http://h:8000/api/v2") == \
        "http://h:8000/api/v2/tenants/default_tenant/databases/default_database/collections"
    rows = np.array([[1.5, -2.0], [0.25, 3.0]], dtype=np.float32)
    body = chroma_api.add_body(10, rows, True)
    assert body["ids"] == ["v10", "v11"]
    decoded = [np.frombuffer(base64.b64decode(e), dtype="<f4") for e in body["embeddings"]]
    assert np.array_equal(np.stack(decoded), rows)  # base64 of little-endian float32, row by row
    assert chroma_api.add_body(0, rows, False)["embeddings"] == [[1.5, -2.0], [0.25, 3.0]]
    assert chroma_api.query_body(rows[0], 5) == {"query_embeddings": [[1.5, -2.0]], "n_results": 5, "include": ["distances"]}
    assert chroma_api.create_body("c", "cosine", {"ef_search": None, "ef_construction": 200, "max_neighbors": 16}) == {
        "name": "c", "configuration": {"hnsw": {"space": "cosine", "ef_construction": 200, "max_neighbors": 16}},
        "get_or_create": False}
    made = {"id": "u", "configuration_json": {"hnsw": {"space": "l2", "ef_search": 100, "max_neighbors": 16, "x": 1}}}
    assert chroma_api.collection_hnsw(made) == {"space": "l2", "ef_search": 100, "max_neighbors": 16}
    assert chroma_api.collection_hnsw({"id": "u", "configuration_json": None}) == {}
    assert chroma_api.returned_rows({"ids": [["v3", "v10"]], "distances": [[0.5, 1.5]]}) == ([3, 10], [0.5, 1.5])
    assert chroma_api.returned_rows({"ids": [["v3"]], "distances": None}) == ([3], [None])
    assert chroma_api.is_heartbeat({"nanosecond heartbeat": 5}) and not chroma_api.is_heartbeat([])


def test_recall_is_over_the_acknowledged_vectors_and_the_document_from_the_samples():
    data = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    queries = np.array([[0.4], [2.9]])
    inserted = np.array([True, False, True, True, True])  # the batch holding row 1 failed
    # for query 0 the true top 2 of what the server holds are rows 0 and 2; row 1 was never acknowledged
    assert chroma_results.recall_of_inserted(inserted, {0: ([0, 2], None)}, data, queries, 2, "l2") == 1.0
    assert chroma_results.recall_of_inserted(inserted, {0: ([0, 1], None)}, data, queries, 2, "l2") == 0.5
    args = argparse.Namespace(num_documents=5, top_k=2, distance="l2", dimension=1, concurrency=1)
    job = {"id": "j", "job_name": "c_j", "node": "n", "slurm_job_id": None, "array_task": None}
    measured = chroma_results.Measured(5)
    measured.inserted[:] = inserted
    measured.returned = {0: ([0, 2], [0.16, 2.5]), 1: ([3, 2], [0.01, 0.81])}  # 2.5: the server is 0.06 off
    measured.insert_ms, measured.query_ms = [4.0, 6.0], [1.0, 3.0]
    measured.sent, measured.completed, measured.failed = 5, 4, 1
    measured.error("add: HTTP 500")
    measured.first_send, measured.last_complete = 100.0, 102.0
    measured.insert_window, measured.query_window = (100.0, 101.0), (101.5, 102.0)
    measured.info = {"hnsw": {"space": "l2", "ef_search": 100}, "base64": True, "max_batch_size": 1000}
    measured.collection = ("u", "orch-bench-j")
    doc = chroma_results.finish(new_document("chroma_benchmark", {}, {}, job=job, started_at=0), measured, args,
                                data, queries, "2026-01-01T00:00:00Z")
    assert doc["run"]["partial"] is False and doc["run"]["ended_at"] == "2026-01-01T00:00:00Z"
    assert doc["counts"] == {"sent": 5, "completed": 4, "failed": 1, "timeouts": 0, "errors": {"add: HTTP 500": 1}}
    assert doc["window"]["duration_s"] == 2.0
    assert doc["throughput"] == {"vectors_per_s": 4.0, "queries_per_s": 4.0, "requests_per_s": 2.0}
    assert doc["latency"]["insert_batch_ms"]["p50"] == 5.0 and doc["latency"]["query_ms"]["n"] == 2
    domain = doc["domain"]
    assert domain["recall_at_k"] == 1.0 and domain["documents_inserted"] == 4 and domain["queries_completed"] == 2
    assert domain["distance_check_max_abs"] == pytest.approx(0.06)
    assert (domain["ef_search"], domain["max_neighbors"], domain["embedding_encoding"]) == (100, None, "base64")
    assert domain["collection"] == "orch-bench-j" and domain["stopped_by"] is None
    measured.stop_reason, measured.returned, measured.query_ms, measured.query_window = "duration", {}, [], None
    doc = chroma_results.finish(new_document("chroma_benchmark", {}, {}, job=job, started_at=0), measured, args,
                                data, queries, "2026-01-01T00:00:00Z")
    assert doc["run"]["partial"] is True and doc["domain"]["stopped_by"] == "duration"
    assert doc["domain"]["recall_at_k"] is None and doc["latency"]["query_ms"] is None
    assert doc["throughput"]["queries_per_s"] is None


# ------------------------------------------------------------------ against Chroma


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    """Base URL of a Chroma started from the shipped recipe's rendered script (host runtime)."""
    bin_dir = chroma_bin()
    need("curl")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "APPTAINER"))}
    if bin_dir:
        env["PATH"] = "%s:%s" % (bin_dir, env.get("PATH", ""))
    base = tmp_path_factory.mktemp("chroma")
    run = Run(base, "chroma", with_port(shipped("chroma"), port), env)
    try:
        run.start()
        run.wait_ready(90)
        yield "http://127.0.0.1:%d" % port
        run.terminate()
    finally:
        run.kill_everything()


def client(url, output, *words, timeout=60):
    host, port = url.rsplit("//", 1)[1].split(":")
    command = [sys.executable, "-m", "orch.clients.chroma_benchmark", "--host", host, "--port", port,
               "--output", str(output), *words]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def collection_names(url):
    return [c["name"] for c in http_json(url + COLLECTIONS)]


def test_a_run_inserts_queries_reports_recall_and_deletes_its_collection(chroma, tmp_path):
    out = tmp_path / "result.json"
    began = time.monotonic()
    result = client(chroma, out, "--duration", "60", "--num-documents", "2000", "--dimension", "32",
                    "--batch-size", "250", "--num-queries", "200", "--top-k", "10", "--seed", "5",
                    "--collection-prefix", "orch-test")
    print("2,000 x d32 + 200 queries: %.2f s; %s" % (time.monotonic() - began, result.stderr.strip()))
    assert result.returncode == 0, result.stderr
    doc = read_document(out)
    assert doc["schema"] == SCHEMA and doc["run"]["client"] == "chroma_benchmark"
    assert doc["run"]["partial"] is False and doc["run"]["ended_at"]
    assert doc["counts"]["failed"] == 0 and doc["counts"]["errors"] == {}
    assert doc["counts"]["completed"] == doc["counts"]["sent"] == 2000 // 250 + 200
    domain = doc["domain"]
    assert domain["documents_inserted"] == 2000 and domain["queries_completed"] == 200
    assert domain["k"] == 10 and domain["distance"] == "l2" and domain["dimension"] == 32
    assert domain["num_documents"] == 2000 and domain["chroma_version"]
    assert domain["stopped_by"] is None
    assert 0.5 <= domain["recall_at_k"] <= 1.0
    # the server's distances are the metric the ground truth used (squared L2)
    assert domain["distance_check_max_abs"] < 1e-3
    assert domain["ef_search"] and domain["max_neighbors"]
    assert doc["throughput"]["vectors_per_s"] > 0 and doc["throughput"]["queries_per_s"] > 0
    assert doc["latency"]["insert_batch_ms"]["n"] == 8 and doc["latency"]["query_ms"]["n"] == 200
    latency = doc["latency"]["query_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert doc["window"]["start_epoch"] < doc["window"]["end_epoch"]
    assert domain["collection"].startswith("orch-test-") and domain["collection_deleted"] is True
    assert domain["collection"] not in collection_names(chroma)


def test_cosine_with_a_batch_above_the_servers_limit_is_split(chroma, tmp_path):
    limit = http_json(chroma + "/api/v2/pre-flight-checks")["max_batch_size"]
    out = tmp_path / "result.json"
    result = client(chroma, out, "--duration", "60", "--num-documents", str(limit + 500), "--dimension", "16",
                    "--batch-size", str(limit + 100), "--num-queries", "50", "--distance", "cosine",
                    "--collection", "orch_cosine_test")
    assert result.returncode == 0, result.stderr
    assert "above the server's max_batch_size" in result.stderr
    doc = read_document(out)
    assert doc["domain"]["batch_size_sent"] == limit and doc["latency"]["insert_batch_ms"]["n"] == 2
    assert doc["domain"]["documents_inserted"] == limit + 500
    assert doc["domain"]["distance"] == "cosine" and doc["domain"]["distance_check_max_abs"] < 1e-3
    assert 0.5 <= doc["domain"]["recall_at_k"] <= 1.0
    assert "orch_cosine_test" not in collection_names(chroma)


def test_sigterm_stops_the_run_with_a_partial_document(chroma, tmp_path):
    out = tmp_path / "result.json"
    host, port = chroma.rsplit("//", 1)[1].split(":")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orch.clients.chroma_benchmark", "--host", host, "--port", port, "--output", str(out),
         "--duration", "120", "--num-documents", "400000", "--dimension", "16", "--batch-size", "500",
         "--collection", "orch_sigterm_test"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        deadline = time.monotonic() + 20
        while "orch_sigterm_test" not in collection_names(chroma):  # inserting has begun
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, stderr
    doc = read_document(out)
    assert doc["run"]["partial"] is True and doc["domain"]["stopped_by"] == "signal"
    assert 0 < doc["domain"]["documents_inserted"] < 400000
    assert doc["latency"]["insert_batch_ms"]["n"] >= 1 and doc["throughput"]["vectors_per_s"] > 0
    assert doc["domain"]["queries_completed"] == 0 and doc["latency"]["query_ms"] is None
    assert doc["domain"]["collection_deleted"] is True
    assert "orch_sigterm_test" not in collection_names(chroma)


def test_duration_bounds_the_run_and_says_so(chroma, tmp_path):
    out = tmp_path / "result.json"
    began = time.monotonic()
    result = client(chroma, out, "--duration", "1", "--num-documents", "400000", "--dimension", "16",
                    "--batch-size", "500")
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    # about 1.5 s on an idle machine; all 400,000 documents would take about 40 s (~10,000 vectors/s)
    assert 1 <= elapsed < 20, "took %.1f s" % elapsed
    doc = read_document(out)
    assert doc["run"]["partial"] is True and doc["domain"]["stopped_by"] == "duration"
    assert 0 < doc["domain"]["documents_inserted"] < 400000
    assert doc["domain"]["collection"] not in collection_names(chroma)


def test_an_existing_collection_is_refused_not_reused(chroma, tmp_path):
    http_json(chroma + COLLECTIONS, {"name": "orch_taken"})
    try:
        result = client(chroma, tmp_path / "result.json", "--duration", "30", "--collection", "orch_taken",
                        "--num-documents", "10", "--num-queries", "1")
        assert result.returncode == 1
        assert "already exists" in result.stderr
        assert "orch_taken" in collection_names(chroma)  # someone else's: left alone
    finally:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.open(urllib.request.Request(chroma + COLLECTIONS + "/orch_taken", method="DELETE"), timeout=10).read()


def test_an_unreachable_server_fails_clearly(tmp_path):
    port = free_port()  # nothing listens there
    out = tmp_path / "result.json"
    began = time.monotonic()
    result = client("http://127.0.0.1:%d" % port, out, "--duration", "30", timeout=30)
    assert time.monotonic() - began < 15
    assert result.returncode not in (0, 143)
    assert "cannot reach Chroma at http://127.0.0.1:%d" % port in result.stderr
    doc = read_document(out)  # the failure is on record too
    assert doc["domain"]["stopped_by"] == "error" and "cannot reach Chroma" in doc["domain"]["failure"]
    assert doc["counts"]["completed"] == 0 and doc["run"]["partial"] is True
