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

This module is the effectful part (the aiohttp driver and ``main``); the maths
(``orch.clients.chroma_vectors``), the API's URLs and bodies (``orch.clients.chroma_api``)
and the document (``orch.clients.chroma_results``) are pure.
"""
import argparse
import asyncio
import json
import signal
import sys
import time
import uuid

from orch.clients import chroma_results
from orch.clients.chroma_api import (add_body, api_base, collection_hnsw, collections_url, create_body,
                                     is_heartbeat, query_body, returned_rows, server_url)
from orch.clients.chroma_vectors import distances, ground_truth, make_vectors, recall_at_k
from orch.clients.node import started_now, this_job, write_document
from orch.results import new_document, now_iso

__all__ = ("main", "ground_truth", "recall_at_k", "make_vectors", "distances")

CLIENT = "chroma_benchmark"
DISTANCES = ("l2", "cosine", "ip")
EXIT_SIGNAL = 143
EXIT_ERROR = 1


class Failure(Exception):
    """A run that cannot go on: the message is for the user."""


# ------------------------------------------------------------------ HTTP


class Chroma:
    """The few v2 calls the benchmark makes, each raising Failure with the server's message."""

    def __init__(self, session, base):
        self.session = session
        self.base = base.rstrip("/")
        self.collections = collections_url(self.base)

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


# ------------------------------------------------------------------ the run


class Run(chroma_results.Measured):
    """The phases of a run, each recording into the ``Measured`` it is (times taken here)."""

    def __init__(self, args, document):
        super().__init__(args.num_documents)
        self.args = args
        self.doc = document
        self.deadline = None

    # --- bookkeeping

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
        if not is_heartbeat(beat):
            raise Failure("%s/heartbeat did not answer like Chroma's v2 API: %r" % (chroma.base, beat))
        self.info["chroma_version"] = await chroma.call("GET", chroma.base + "/version", timeout=10)
        checks = await chroma.call("GET", chroma.base + "/pre-flight-checks", timeout=10) or {}
        self.info["max_batch_size"] = checks.get("max_batch_size")
        self.info["base64"] = bool(checks.get("supports_base64_encoding"))

    async def create(self, chroma, name):
        options = {key: getattr(self.args, key) for key in ("ef_search", "ef_construction", "max_neighbors")}
        try:
            made = await chroma.call("POST", chroma.collections, create_body(name, self.args.distance, options))
        except Failure as exc:
            if "409" in str(exc) or "already exists" in str(exc).lower():
                raise Failure("collection %r already exists: the benchmark needs a fresh one "
                              "(choose another --collection or delete it)" % name) from None
            raise
        self.collection = (made["id"], name)
        hnsw = collection_hnsw(made)
        if hnsw.get("space", self.args.distance) != self.args.distance:
            raise Failure("Chroma made collection %r with space %r, not %r" % (name, hnsw.get("space"), self.args.distance))
        self.info["hnsw"] = hnsw
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
            body = add_body(start, rows, self.info["base64"])
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
                body = query_body(queries[i], n_results)
                state["started"] = state["started"] or time.time()
                timed = await self.timed_call("query", chroma, url, body)
                if timed is None:
                    continue
                answer, elapsed = timed
                self.query_ms.append(elapsed)
                self.query_window = (state["started"], time.time())
                self.returned[i] = returned_rows(answer)

        await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))

    # --- the document

    def finish(self, data, queries):
        return chroma_results.finish(self.doc, self, self.args, data, queries, now_iso(started_now()))


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
    base = api_base(args.host, args.port, args.url)
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
    parser.add_argument("--url", default=None, help="Chroma's base URL (scheme, host, port and path); default http://HOST:PORT")
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
    target = {"kind": "chroma", "url": server_url(args.host, args.port, args.url), "host": args.host, "port": args.port}
    document = new_document(CLIENT, parameters, target, job=this_job(), started_at=started_now(),
                            command=["python3", "-m", "orch.clients.chroma_benchmark"] + argv)
    def early(signum, frame):  # until the event loop installs its own handlers
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, early)
    try:
        doc, failure, signalled = asyncio.run(run_async(args, document))
    except KeyboardInterrupt:  # a signal before the loop installed its handlers
        document["run"]["ended_at"] = now_iso(started_now())
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
