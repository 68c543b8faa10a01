"""Chroma load generator: insert seeded random vectors, query them, measure recall@k.

Run as ``python3 -m orch.clients.chroma_benchmark --host H --port P --duration D
--output PATH [options]``. Talks to Chroma's HTTP v2 API directly (aiohttp; no
``chromadb`` package), default tenant and database:

1. ``GET /api/v2/heartbeat``, ``/api/v2/version``, ``/api/v2/pre-flight-checks``
   (``max_batch_size``: larger batches are split, and the split is recorded;
   ``supports_base64_encoding``: embeddings go as base64 little-endian float32,
   as Chroma's own client sends them).
2. A fresh collection (``--collection``, or ``--collection-prefix`` + run id + SLURM job id +
   array task, so sweep points that run at once never share one) with
   ``configuration.hnsw.space`` = ``--distance``; an existing one is an error,
   never reused or deleted.
3. Ingest: ``--num-documents`` vectors (numpy, float32, standard normal, seeded;
   unit length for cosine) in batches of ``--batch-size``, one batch in flight;
   each batch timed from send to parsed reply (``insert_batch_ms``), and
   ``vectors_per_s`` = vectors acknowledged / (first send .. last reply).
4. Query: ``--num-queries`` vectors from an independent stream of the same seed
   and distribution (not copies of inserted ones), ``n_results = --top-k``,
   ``--concurrency`` in flight (1 = serial, VectorDBBench's serial run);
   ``query_ms`` per query, ``queries_per_s`` = completed / query window.
5. Recall@k against exact brute-force neighbours (numpy, float64) over the
   vectors the server acknowledged, in the collection's metric (squared L2,
   1 - cos, 1 - dot). Tie-tolerant like ann-benchmarks: a returned id counts if
   its true distance <= the k-th true distance + 1e-3 * max(1, |k-th|).
   ``domain.distance_check_max_abs`` compares the server's distances with
   numpy's for the returned ids (it catches a metric mix-up).
6. The collection is deleted (also after SIGTERM/SIGINT, best effort).

``--duration`` bounds the whole run: past it no new batch or query is sent, the
document says what was done (``domain.stopped_by = "duration"``) and is marked
partial. SIGTERM/SIGINT: the same, ``stopped_by = "signal"``, exit status 143.
"""
import argparse
import asyncio
import base64
import json
import signal
import sys
import time
import uuid

import numpy as np

from orch.results import new_document, now_iso, summary, write_document

__all__ = ("main", "ground_truth", "recall_at_k", "make_vectors", "distances")

CLIENT = "chroma_benchmark"
TENANT = "default_tenant"
DATABASE = "default_database"
DISTANCES = ("l2", "cosine", "ip")
EXIT_SIGNAL = 143
EXIT_ERROR = 1
GT_BLOCK = 1 << 24  # distance-matrix cells computed at once (float64: 128 MiB)


class Failure(Exception):
    """A run that cannot go on: the message is for the user."""


# ------------------------------------------------------------------ vectors and recall


def make_vectors(seed, num_documents, num_queries, dimension, distance):
    """Seeded data and query vectors (float32), from two independent streams of one seed.

    >>> data, queries = make_vectors(1, 5, 2, 3, "cosine")
    >>> data.shape, queries.shape, data.dtype.name
    ((5, 3), (2, 3), 'float32')
    >>> bool(np.allclose(np.linalg.norm(data, axis=1), 1.0))
    True
    """
    data_stream, query_stream = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    data = data_stream.standard_normal((num_documents, dimension), dtype=np.float32)
    queries = query_stream.standard_normal((num_queries, dimension), dtype=np.float32)
    if distance == "cosine":
        data /= np.linalg.norm(data, axis=1, keepdims=True)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return data, queries


def distances(queries, data, distance):
    """Distance matrix (float64) in Chroma's metric: squared L2, 1 - cos, 1 - dot.

    >>> distances(np.array([[0.0, 1.0]]), np.array([[0.0, 3.0], [1.0, 0.0]]), "l2").tolist()
    [[4.0, 2.0]]
    >>> distances(np.array([[0.0, 2.0]]), np.array([[0.0, 3.0], [1.0, 0.0]]), "cosine").tolist()
    [[0.0, 1.0]]
    """
    q = np.asarray(queries, dtype=np.float64)
    d = np.asarray(data, dtype=np.float64)
    if distance == "l2":
        result = (q * q).sum(1)[:, None] + (d * d).sum(1)[None, :] - 2.0 * (q @ d.T)
        return np.maximum(result, 0.0)
    if distance == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
        dn = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-30)
        return 1.0 - qn @ dn.T
    if distance == "ip":
        return 1.0 - q @ d.T
    raise ValueError("unknown distance %r" % distance)


def ground_truth(queries, data, k, distance):
    """Exact k nearest (indices sorted by distance, and the k-th distance) per query.

    Blocked over queries and data, so memory stays near GT_BLOCK float64 cells
    whatever the collection's size (the data is never converted whole).

    >>> ground_truth(np.array([[0.0]]), np.array([[3.0], [1.0], [2.0]]), 2, "l2")[0].tolist()
    [[1, 2]]
    """
    k = min(k, len(data))
    data_rows = min(len(data), 1 << 16)
    query_rows = max(1, GT_BLOCK // data_rows)
    indices = np.empty((len(queries), k), dtype=np.int64)
    kth = np.empty(len(queries), dtype=np.float64)
    for qs in range(0, len(queries), query_rows):
        q = queries[qs:qs + query_rows]
        best_i = np.empty((len(q), 0), dtype=np.int64)
        best_d = np.empty((len(q), 0), dtype=np.float64)
        for ds in range(0, len(data), data_rows):
            block = distances(q, data[ds:ds + data_rows], distance)
            take = min(k, block.shape[1])
            part = np.argpartition(block, take - 1, axis=1)[:, :take]
            cand_d = np.concatenate([best_d, np.take_along_axis(block, part, axis=1)], axis=1)
            cand_i = np.concatenate([best_i, part + ds], axis=1)
            keep = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
            best_d = np.take_along_axis(cand_d, keep, axis=1)
            best_i = np.take_along_axis(cand_i, keep, axis=1)
        indices[qs:qs + len(q)] = best_i
        kth[qs:qs + len(q)] = best_d[:, -1]
    return indices, kth


def recall_at_k(queries, data, returned, k, distance):
    """Mean tie-tolerant recall@k of ``returned`` (per query: lists of row indices into ``data``).

    A returned row counts if its true distance <= k-th true distance + 1e-3 * max(1, |k-th|)
    (ann-benchmarks' rule, with the epsilon scaled for large squared-L2 distances).
    Returns (mean recall, per-query recalls).

    >>> data = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> recall_at_k(np.array([[0.1]]), data, [[0, 1]], 2, "l2")[0]
    1.0
    >>> recall_at_k(np.array([[0.1]]), data, [[0, 3]], 2, "l2")[0]
    0.5
    """
    if not len(returned):
        return None, []
    k_eff = min(k, len(data))
    _, kth = ground_truth(queries, data, k_eff, distance)
    per_query = []
    for i, rows in enumerate(returned):
        rows = [r for r in rows[:k_eff] if r is not None]
        if not rows:
            per_query.append(0.0)
            continue
        true = distances(queries[i:i + 1], data[np.asarray(rows)], distance)[0]
        threshold = kth[i] + 1e-3 * max(1.0, abs(kth[i]))
        per_query.append(float(np.count_nonzero(true <= threshold)) / k_eff)
    return float(np.mean(per_query)), per_query


# ------------------------------------------------------------------ HTTP


class Chroma:
    """The few v2 calls the benchmark makes, each raising Failure with the server's message."""

    def __init__(self, session, base):
        self.session = session
        self.base = base.rstrip("/")
        self.collections = "%s/tenants/%s/databases/%s/collections" % (self.base, TENANT, DATABASE)

    async def call(self, method, url, body=None, timeout=None):
        import aiohttp

        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": "application/json"} if data is not None else None
        kwargs = {"data": data, "headers": headers}
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        async with self.session.request(method, url, **kwargs) as response:
            text = await response.text()
            if response.status >= 400:
                raise Failure("%s %s: HTTP %d: %s" % (method, url.replace(self.base, ""), response.status, text[:300]))
            return json.loads(text) if text else None


def encode_embeddings(vectors, base64_ok):
    """Embeddings as Chroma takes them: base64 of little-endian float32 (when the server says so) or lists."""
    if base64_ok:
        raw = np.ascontiguousarray(vectors, dtype="<f4")
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in raw]
    return vectors.tolist()


# ------------------------------------------------------------------ the run


class Run:
    def __init__(self, args, document):
        self.args = args
        self.doc = document
        self.stop_reason = None  # "duration" | "signal" | "error"
        self.deadline = None
        self.insert_ms = []
        self.query_ms = []
        self.inserted = np.zeros(args.num_documents, dtype=bool)
        self.returned = {}  # query index -> (row indices, server distances)
        self.errors = {}
        self.sent = self.completed = self.failed = self.timeouts = 0
        self.first_send = self.last_complete = None
        self.insert_window = self.query_window = None
        self.collection = None  # (id, name) once created
        self.info = {}

    # --- bookkeeping

    def error(self, message):
        self.errors[message] = self.errors.get(message, 0) + 1

    def out_of_time(self):
        if self.stop_reason is None and time.monotonic() >= self.deadline:
            self.stop_reason = "duration"
        return self.stop_reason is not None

    def mark_send(self):
        self.sent += 1
        if self.first_send is None:
            self.first_send = time.time()

    def mark_done(self, ok):
        self.last_complete = time.time()
        if ok:
            self.completed += 1
        else:
            self.failed += 1

    # --- phases

    async def prepare(self, chroma):
        try:
            beat = await chroma.call("GET", chroma.base + "/heartbeat", timeout=10)
        except Failure:
            raise
        except Exception as exc:  # connection refused, DNS, timeout
            raise Failure("cannot reach Chroma at %s: %s" % (chroma.base, exc or type(exc).__name__)) from None
        if not isinstance(beat, dict) or "nanosecond heartbeat" not in beat:
            raise Failure("%s/heartbeat did not answer like Chroma's v2 API: %r" % (chroma.base, beat))
        self.info["chroma_version"] = await chroma.call("GET", chroma.base + "/version", timeout=10)
        checks = await chroma.call("GET", chroma.base + "/pre-flight-checks", timeout=10) or {}
        self.info["max_batch_size"] = checks.get("max_batch_size")
        self.info["base64"] = bool(checks.get("supports_base64_encoding"))

    async def create(self, chroma, name):
        hnsw = {"space": self.args.distance}
        for option, key in (("ef_search", "ef_search"), ("ef_construction", "ef_construction"), ("max_neighbors", "max_neighbors")):
            if getattr(self.args, option) is not None:
                hnsw[key] = getattr(self.args, option)
        try:
            made = await chroma.call("POST", chroma.collections, {"name": name, "configuration": {"hnsw": hnsw}, "get_or_create": False})
        except Failure as exc:
            if "409" in str(exc) or "already exists" in str(exc).lower():
                raise Failure("collection %r already exists: the benchmark needs a fresh one "
                              "(choose another --collection or delete it)" % name) from None
            raise
        self.collection = (made["id"], name)
        config = (made.get("configuration_json") or {}).get("hnsw") or {}
        if config.get("space", self.args.distance) != self.args.distance:
            raise Failure("Chroma made collection %r with space %r, not %r" % (name, config.get("space"), self.args.distance))
        self.info["hnsw"] = {k: config.get(k) for k in ("space", "ef_search", "ef_construction", "max_neighbors") if k in config}
        return made["id"]

    async def ingest(self, chroma, collection_id, data):
        url = "%s/%s/add" % (chroma.collections, collection_id)
        size = self.args.batch_size
        limit = self.info.get("max_batch_size")
        if limit and size > limit:
            print("chroma_benchmark: batch size %d is above the server's max_batch_size %d: sending batches of %d"
                  % (size, limit, limit), file=sys.stderr)
            size = limit
        self.info["batch_size_sent"] = size
        started = None
        for start in range(0, len(data), size):
            if self.out_of_time():
                break
            rows = data[start:start + size]
            body = {"ids": ["v%d" % i for i in range(start, start + len(rows))],
                    "embeddings": encode_embeddings(rows, self.info["base64"])}
            started = started or time.time()
            timed = await self.timed_call("add", chroma, url, body)
            if timed is None:
                continue
            self.insert_ms.append(timed[1])
            self.inserted[start:start + len(rows)] = True
            self.insert_window = (started, time.time())

    async def timed_call(self, what, chroma, url, body):
        """``(answer, round trip in ms)`` of one POST, counted as sent and done; None, with the error recorded, when it failed."""
        self.mark_send()
        t0 = time.perf_counter_ns()
        try:
            answer = await chroma.call("POST", url, body)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.mark_done(False)
            self.error("%s: %s" % (what, exc if isinstance(exc, Failure) else type(exc).__name__ + ": " + str(exc)))
            return None
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        self.mark_done(True)
        return answer, elapsed

    async def query(self, chroma, collection_id, queries):
        url = "%s/%s/query" % (chroma.collections, collection_id)
        n_results = min(self.args.top_k, int(self.inserted.sum()))
        if n_results < 1:
            return
        state = {"next": 0, "started": None}

        async def worker():
            while not self.out_of_time():
                i = state["next"]
                if i >= len(queries):
                    return
                state["next"] = i + 1
                body = {"query_embeddings": [queries[i].tolist()], "n_results": n_results, "include": ["distances"]}
                state["started"] = state["started"] or time.time()
                timed = await self.timed_call("query", chroma, url, body)
                if timed is None:
                    continue
                answer, elapsed = timed
                self.query_ms.append(elapsed)
                self.query_window = (state["started"], time.time())
                ids = answer["ids"][0]
                self.returned[i] = ([int(x[1:]) for x in ids], (answer.get("distances") or [[None] * len(ids)])[0])

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))

    # --- the document

    def finish(self, data, queries):
        doc, args = self.doc, self.args
        doc["run"]["ended_at"] = now_iso()
        doc["run"]["partial"] = self.stop_reason is not None
        doc["window"].update(
            start_epoch=self.first_send, end_epoch=self.last_complete,
            duration_s=(self.last_complete - self.first_send) if self.first_send and self.last_complete else None,
        )
        doc["counts"].update(sent=self.sent, completed=self.completed, failed=self.failed,
                             timeouts=self.timeouts, errors=dict(self.errors))
        inserted = int(self.inserted.sum())
        insert_s = self.insert_window[1] - self.insert_window[0] if self.insert_window else None
        query_s = self.query_window[1] - self.query_window[0] if self.query_window else None
        doc["throughput"] = {
            "vectors_per_s": inserted / insert_s if insert_s else None,
            "queries_per_s": len(self.query_ms) / query_s if query_s else None,
            "requests_per_s": self.completed / doc["window"]["duration_s"] if doc["window"]["duration_s"] else None,
        }
        doc["latency"] = {"insert_batch_ms": summary(self.insert_ms), "query_ms": summary(self.query_ms)}
        recall, check = None, None
        if self.returned and inserted:
            kept = np.flatnonzero(self.inserted)
            position = np.full(len(self.inserted), -1, dtype=np.int64)
            position[kept] = np.arange(len(kept))
            order = sorted(self.returned)
            rows = [[int(position[r]) if position[r] >= 0 else None for r in self.returned[i][0]] for i in order]
            present = data if len(kept) == len(data) else data[kept]  # no copy of a whole collection
            recall, _ = recall_at_k(queries[order], present, rows, args.top_k, args.distance)
            diffs = []
            for i in order[:50]:
                ids, server = self.returned[i]
                if ids and server and server[0] is not None:
                    true = distances(queries[i:i + 1], data[np.asarray(ids)], args.distance)[0]
                    diffs.append(float(np.max(np.abs(true - np.asarray(server, dtype=np.float64)))))
            check = max(diffs) if diffs else None
        hnsw = self.info.get("hnsw") or {}
        doc["domain"] = {
            "recall_at_k": recall,
            "k": args.top_k,
            "distance": args.distance,
            "dimension": args.dimension,
            "num_documents": args.num_documents,
            "documents_inserted": inserted,
            "queries_completed": len(self.query_ms),
            "query_concurrency": args.concurrency,
            "chroma_version": self.info.get("chroma_version"),
            "collection": self.collection[1] if self.collection else None,
            "batch_size_sent": self.info.get("batch_size_sent"),
            "max_batch_size": self.info.get("max_batch_size"),
            "embedding_encoding": "base64" if self.info.get("base64") else "json",
            "ef_search": hnsw.get("ef_search"),
            "ef_construction": hnsw.get("ef_construction"),
            "max_neighbors": hnsw.get("max_neighbors"),
            "insert_s": insert_s,
            "query_s": query_s,
            "distance_check_max_abs": check,
            "recall_rule": "tie-tolerant: true distance <= k-th + 1e-3*max(1,|k-th|)",
            "stopped_by": self.stop_reason,
        }
        return doc



def default_collection(prefix, document):
    """A collection name no other benchmark of the run uses: array tasks of a sweep may share one Chroma.

    >>> default_collection("orch-bench", {"run": {"id": "ab12"}, "environment": {"slurm_job_id": "436", "array_task": "2"}})
    'orch-bench-ab12-436-2'
    """
    environment = document.get("environment") or {}
    parts = [prefix, document["run"]["id"] or uuid.uuid4().hex[:12], environment.get("slurm_job_id"), environment.get("array_task")]
    return "-".join(str(p) for p in parts if p)[:63].rstrip("._-")


async def run_async(args, document):
    import aiohttp

    run = Run(args, document)
    run.deadline = time.monotonic() + args.duration
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    signalled = []

    def on_signal(signum):
        if not signalled:
            signalled.append(signum)
            run.stop_reason = "signal"
            main_task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    data, queries = make_vectors(args.seed, args.num_documents, args.num_queries, args.dimension, args.distance)
    base = "http://%s:%d/api/v2" % (args.host if ":" not in args.host else "[%s]" % args.host, args.port)
    connector = aiohttp.TCPConnector(limit=max(1, args.concurrency))
    timeout = aiohttp.ClientTimeout(total=args.request_timeout)
    failure = None
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        chroma = Chroma(session, base)
        try:
            await run.prepare(chroma)
            name = args.collection or default_collection(args.collection_prefix, document)
            collection_id = await run.create(chroma, name)
            await run.ingest(chroma, collection_id, data)
            if not run.out_of_time():
                await run.query(chroma, collection_id, queries)
        except asyncio.CancelledError:
            if not signalled:
                raise
        except Failure as exc:
            failure = str(exc)
            run.stop_reason = run.stop_reason or "error"
        finally:
            if run.collection:
                try:
                    await asyncio.shield(chroma.call("DELETE", "%s/%s" % (chroma.collections, run.collection[1]), timeout=10))
                    run.info["collection_deleted"] = True
                except (Exception, asyncio.CancelledError) as exc:
                    run.info["collection_deleted"] = False
                    print("chroma_benchmark: could not delete collection %r: %s" % (run.collection[1], exc), file=sys.stderr)
    doc = run.finish(data, queries)
    doc["domain"]["collection_deleted"] = run.info.get("collection_deleted")
    if failure:
        doc["domain"]["failure"] = failure
    return doc, failure, bool(signalled)


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m orch.clients.chroma_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=float, default=60.0, help="bound on the whole run, seconds")
    parser.add_argument("--output", required=True)
    parser.add_argument("--num-documents", type=int, default=10000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--num-queries", type=int, default=1000)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--distance", choices=DISTANCES, default="l2")
    parser.add_argument("--concurrency", type=int, default=1, help="queries in flight (1: serial)")
    parser.add_argument("--ef-search", type=int, default=None)
    parser.add_argument("--ef-construction", type=int, default=None)
    parser.add_argument("--max-neighbors", type=int, default=None)
    parser.add_argument("--collection", default=None)
    parser.add_argument("--collection-prefix", default="orch-bench")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds per HTTP request")
    args = parser.parse_args(argv)
    for name in ("num_documents", "dimension", "batch_size", "num_queries", "top_k", "concurrency"):
        if getattr(args, name) < 1:
            parser.error("--%s must be at least 1" % name.replace("_", "-"))
    if args.duration <= 0:
        parser.error("--duration must be positive")
    if args.collection is not None and len(args.collection) < 3:
        parser.error("--collection needs at least 3 characters (Chroma's rule)")
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    parameters = {k: getattr(args, k) for k in (
        "num_documents", "dimension", "batch_size", "num_queries", "top_k", "distance", "concurrency",
        "ef_search", "ef_construction", "max_neighbors", "collection", "collection_prefix", "seed", "duration")}
    target = {"kind": "chroma", "url": "http://%s:%d" % (args.host, args.port), "host": args.host, "port": args.port}
    document = new_document(CLIENT, parameters, target, command=["python3", "-m", "orch.clients.chroma_benchmark"] + argv)
    def early(signum, frame):  # until the event loop installs its own handlers
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, early)
    try:
        doc, failure, signalled = asyncio.run(run_async(args, document))
    except KeyboardInterrupt:  # a signal before the loop installed its handlers
        document["run"]["ended_at"] = now_iso()
        document["domain"]["stopped_by"] = "signal"
        write_document(args.output, document)
        return EXIT_SIGNAL
    write_document(args.output, doc)
    if signalled:
        print("chroma_benchmark: stopped by signal; partial results in %s" % args.output, file=sys.stderr)
        return EXIT_SIGNAL
    if failure:
        print("chroma_benchmark: FAILED: %s" % failure, file=sys.stderr)
        return EXIT_ERROR
    d = doc["domain"]
    figure = lambda value, form: "-" if value is None else form % value  # noqa: E731
    print("chroma_benchmark: %d vectors at %s/s; %d queries at %s/s, recall@%d %s%s" % (
        d["documents_inserted"], figure(doc["throughput"]["vectors_per_s"], "%.0f"), d["queries_completed"],
        figure(doc["throughput"]["queries_per_s"], "%.1f"), args.top_k, figure(d["recall_at_k"], "%.4f"),
        " (stopped by %s)" % d["stopped_by"] if d["stopped_by"] else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
