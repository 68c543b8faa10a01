"""The Chroma client's results: what a run measured (``Measured``) and its ``orch.result/1`` document. Pure.

The driver (``orch.clients.chroma_benchmark``) records into a ``Measured`` as it goes (times it took
itself: epoch seconds for the windows, milliseconds for each request) and ``finish`` fills the document
in from those raw samples; recall is scored here against the exact neighbours
(``orch.clients.chroma_vectors``).

  * ``insert_batch_ms``: each ``/add`` from send to parsed reply; ``vectors_per_s`` = vectors
    acknowledged / (first batch sent .. last reply).
  * ``query_ms``: each ``/query`` likewise; ``queries_per_s`` = completed / (first query sent .. last reply).
  * ``recall_at_k``: over the vectors the server acknowledged; ``distance_check_max_abs`` compares the
    server's distances with numpy's for the first 50 queries answered.
  * window: first request sent .. last request done (epoch seconds); ``requests_per_s`` = completed / window.
"""
import numpy as np

from orch.clients.chroma_vectors import distance_error, recall_at_k
from orch.results import summary

__all__ = ("Measured", "recall_of_inserted", "finish")

CHECKED_QUERIES = 50


class Measured:
    """What a run has measured so far: plain data, the driver supplies every time."""

    def __init__(self, num_documents):
        self.stop_reason = None  # "duration" | "signal" | "error"
        self.insert_ms = []
        self.query_ms = []
        self.inserted = np.zeros(num_documents, dtype=bool)
        self.returned = {}  # query index -> (row indices, server distances)
        self.errors = {}
        self.sent = self.completed = self.failed = self.timeouts = 0
        self.first_send = self.last_complete = None
        self.insert_window = self.query_window = None
        self.collection = None  # (id, name) once created
        self.info = {}

    def error(self, message):
        self.errors[message] = self.errors.get(message, 0) + 1


def recall_of_inserted(inserted, returned, data, queries, k, distance):
    """Mean recall@k of the answers ``returned`` ({query index: (rows, distances)}) against the rows the
    server acknowledged (``inserted``: a mask over ``data``); a returned row that was never
    acknowledged counts as a miss.

    >>> data = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> inserted = np.array([True, False, True, True])
    >>> recall_of_inserted(inserted, {0: ([0, 2], None)}, data, np.array([[0.1]]), 2, "l2")
    1.0
    >>> recall_of_inserted(inserted, {0: ([0, 1], None)}, data, np.array([[0.1]]), 2, "l2")
    0.5
    """
    kept = np.flatnonzero(inserted)
    position = np.full(len(inserted), -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    order = sorted(returned)
    rows = [[int(position[r]) if position[r] >= 0 else None for r in returned[i][0]] for i in order]
    present = data if len(kept) == len(data) else data[kept]  # no copy of a whole collection
    return recall_at_k(queries[order], present, rows, k, distance)[0]


def finish(doc, measured, args, data, queries, ended_at):
    """Fill ``doc`` (from ``orch.results.new_document``) in from ``measured``; ``ended_at`` is ISO 8601."""
    m = measured
    doc["run"]["ended_at"] = ended_at
    doc["run"]["partial"] = m.stop_reason is not None
    doc["window"].update(
        start_epoch=m.first_send, end_epoch=m.last_complete,
        duration_s=(m.last_complete - m.first_send) if m.first_send and m.last_complete else None,
    )
    doc["counts"].update(sent=m.sent, completed=m.completed, failed=m.failed, timeouts=m.timeouts,
                         errors=dict(m.errors))
    inserted = int(m.inserted.sum())
    insert_s = m.insert_window[1] - m.insert_window[0] if m.insert_window else None
    query_s = m.query_window[1] - m.query_window[0] if m.query_window else None
    doc["throughput"] = {
        "vectors_per_s": inserted / insert_s if insert_s else None,
        "queries_per_s": len(m.query_ms) / query_s if query_s else None,
        "requests_per_s": m.completed / doc["window"]["duration_s"] if doc["window"]["duration_s"] else None,
    }
    doc["latency"] = {"insert_batch_ms": summary(m.insert_ms), "query_ms": summary(m.query_ms)}
    recall, check = None, None
    if m.returned and inserted:
        recall = recall_of_inserted(m.inserted, m.returned, data, queries, args.top_k, args.distance)
        checked = {i: m.returned[i] for i in sorted(m.returned)[:CHECKED_QUERIES]}
        check = distance_error(queries, data, checked, args.distance)
    hnsw = m.info.get("hnsw") or {}
    doc["domain"] = {
        "recall_at_k": recall,
        "k": args.top_k,
        "distance": args.distance,
        "dimension": args.dimension,
        "num_documents": args.num_documents,
        "documents_inserted": inserted,
        "queries_completed": len(m.query_ms),
        "query_concurrency": args.concurrency,
        "chroma_version": m.info.get("chroma_version"),
        "collection": m.collection[1] if m.collection else None,
        "batch_size_sent": m.info.get("batch_size_sent"),
        "max_batch_size": m.info.get("max_batch_size"),
        "embedding_encoding": "base64" if m.info.get("base64") else "json",
        "ef_search": hnsw.get("ef_search"),
        "ef_construction": hnsw.get("ef_construction"),
        "max_neighbors": hnsw.get("max_neighbors"),
        "insert_s": insert_s,
        "query_s": query_s,
        "distance_check_max_abs": check,
        "recall_rule": "tie-tolerant: true distance <= k-th + 1e-3*max(1,|k-th|)",
        "stopped_by": m.stop_reason,
    }
    return doc
