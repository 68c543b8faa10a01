"""Insert throughput of orch's Chroma client beside Chroma's own Python client, same server, same run.

    python benchmarks/bench_chroma_client.py [--num-documents N] [--dimension D] [--batch-size B]
                                             [--repetitions R] [--json PATH]

Starts one Chroma (``$ORCH_CHROMA_VENV/bin/chroma run``, default
/opt/orch/chroma-venv, on a free loopback port, data in a temporary directory)
and, alternating A B A B ... ``--repetitions`` times each, inserts the same
seeded vectors (``orch.clients.chroma_benchmark.make_vectors``: float32,
standard normal, seed 42) in the same batches into a fresh l2 collection:

A. orch: ``python -m orch.clients.chroma_benchmark ... --num-queries 1`` as a
   client job runs it; its ``throughput.vectors_per_s`` and ``insert_batch_ms``.
B. chromadb: the venv's python running ``HttpClient(...).create_collection(...)``
   then ``collection.add(ids, embeddings)`` per batch (the vectors loaded from
   the same .npy file), timed the same way: vectors / (first send .. last reply).

Prints a table and the ratio orch / chromadb (medians over repetitions, and
per repetition pair). Both clients send embeddings base64-encoded when the
server supports it; Chroma's client validates every batch first.
"""
import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from orch.clients.chroma_benchmark import make_vectors  # noqa: E402
from orch.results import summary  # noqa: E402

VENV = Path(os.environ.get("ORCH_CHROMA_VENV") or "/opt/orch/chroma-venv")

CHROMADB_SIDE = r'''
import json, sys, time
import numpy as np
import chromadb
host, port, path, batch, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
data = np.load(path)
client = chromadb.HttpClient(host=host, port=port)
collection = client.create_collection(name, configuration={"hnsw": {"space": "l2"}})
ids = ["v%d" % i for i in range(len(data))]
batches = []
first = None
for start in range(0, len(data), batch):
    t0 = time.perf_counter_ns()
    first = first or time.time()
    collection.add(ids=ids[start:start + batch], embeddings=data[start:start + batch])
    batches.append((time.perf_counter_ns() - t0) / 1e6)
last = time.time()
assert collection.count() == len(data)
client.delete_collection(name)
print(json.dumps({"vectors_per_s": len(data) / (last - first), "insert_batch_ms": batches,
                  "version": chromadb.__version__}))
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, bound=90):
    deadline = time.monotonic() + bound
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("chroma exited with status %s" % proc.returncode)
        try:
            opener.open(url + "/api/v2/heartbeat", timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("chroma not ready after %d s" % bound)


def run_orch(port, args, out, index):
    result = subprocess.run(
        [sys.executable, "-m", "orch.clients.chroma_benchmark", "--host", "127.0.0.1", "--port", str(port),
         "--duration", "600", "--num-documents", str(args.num_documents), "--dimension", str(args.dimension),
         "--batch-size", str(args.batch_size), "--num-queries", "1", "--seed", "42", "--distance", "l2",
         "--collection", "bench_orch_%d" % index, "--output", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=900)
    if result.returncode != 0:
        raise SystemExit("orch client failed:\n" + result.stderr)
    doc = json.loads(out.read_text())
    assert doc["domain"]["documents_inserted"] == args.num_documents
    return {"vectors_per_s": doc["throughput"]["vectors_per_s"],
            "insert_batch_ms": doc["latency"]["insert_batch_ms"]["p50"]}


def run_chromadb(port, args, npy, index):
    result = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", CHROMADB_SIDE, "127.0.0.1", str(port), str(npy),
         str(args.batch_size), "bench_chromadb_%d" % index],
        capture_output=True, text=True, timeout=900, env=dict(os.environ, ANONYMIZED_TELEMETRY="False"))
    if result.returncode != 0:
        raise SystemExit("chromadb client failed:\n" + result.stderr)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return {"vectors_per_s": answer["vectors_per_s"], "insert_batch_ms": summary(answer["insert_batch_ms"])["p50"],
            "version": answer["version"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-documents", type=int, default=20000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    chroma = VENV / "bin" / "chroma"
    if not chroma.exists():
        raise SystemExit("no %s (scripts/install-test-deps installs it)" % chroma)
    work = Path(tempfile.mkdtemp(prefix="orch-bench-chroma-"))
    data, _ = make_vectors(42, args.num_documents, 1, args.dimension, "l2")
    npy = work / "vectors.npy"
    np.save(npy, data)
    port = free_port()
    log = open(work / "chroma.log", "wb")
    server = subprocess.Popen([str(chroma), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(work / "data")],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rows = {"orch": [], "chromadb": []}
    try:
        wait_ready("http://127.0.0.1:%d" % port, server)
        for i in range(args.repetitions):
            rows["orch"].append(run_orch(port, args, work / ("orch-%d.json" % i), i))
            rows["chromadb"].append(run_chromadb(port, args, npy, i))
            print("repetition %d: orch %.0f vectors/s, chromadb %.0f vectors/s" % (
                i + 1, rows["orch"][-1]["vectors_per_s"], rows["chromadb"][-1]["vectors_per_s"]), file=sys.stderr)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)

    def median(side, key):
        return statistics.median(r[key] for r in rows[side])

    ratios = [a["vectors_per_s"] / b["vectors_per_s"] for a, b in zip(rows["orch"], rows["chromadb"])]
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "chromadb": rows["chromadb"][0]["version"]},
        "workload": {"num_documents": args.num_documents, "dimension": args.dimension,
                     "batch_size": args.batch_size, "repetitions": args.repetitions, "distance": "l2"},
        "orch": rows["orch"], "chromadb": rows["chromadb"],
        "median_vectors_per_s": {"orch": median("orch", "vectors_per_s"), "chromadb": median("chromadb", "vectors_per_s")},
        "median_batch_ms_p50": {"orch": median("orch", "insert_batch_ms"), "chromadb": median("chromadb", "insert_batch_ms")},
        "ratio_orch_over_chromadb": {"median": statistics.median(ratios), "runs": ratios},
    }
    print("| client | vectors/s (median of %d) | batch p50 ms | runs |" % args.repetitions)
    print("|---|---:|---:|---|")
    for side in ("orch", "chromadb"):
        print("| %s | **%.0f** | %.1f | %s |" % (
            side, result["median_vectors_per_s"][side], result["median_batch_ms_p50"][side],
            ", ".join("%.0f" % r["vectors_per_s"] for r in rows[side])))
    print("\nratio orch / chromadb: **%.2f** (runs %s)" % (
        result["ratio_orch_over_chromadb"]["median"], ", ".join("%.2f" % r for r in ratios)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
