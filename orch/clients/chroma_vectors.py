"""The Chroma client's maths: seeded vectors, distances in Chroma's metrics, exact neighbours, recall@k.

Pure numpy, no server: the driver (``orch.clients.chroma_benchmark``) makes its data and queries here
and scores what the server returned against the brute-force ground truth.

  * ``make_vectors``: float32, standard normal, seeded; data and queries from two independent streams of
    one seed (queries are not copies of inserted vectors); unit length for cosine.
  * ``distances``: Chroma's metrics: ``l2`` is squared L2, ``cosine`` 1 - cos, ``ip`` 1 - dot (float64).
  * ``ground_truth``: exact k nearest by brute force, blocked so memory stays bounded.
  * ``recall_at_k``: mean tie-tolerant recall@k, like ann-benchmarks: a returned row counts if its true
    distance <= the k-th true distance + 1e-3 * max(1, |k-th|).
  * ``distance_error``: the largest difference between the server's distances and numpy's for the
    returned rows (it catches a metric mix-up).
"""
import numpy as np

__all__ = ("make_vectors", "distances", "ground_truth", "recall_at_k", "distance_error")

GT_BLOCK = 1 << 24  # distance-matrix cells computed at once (float64: 128 MiB)


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


def distance_error(queries, data, returned, distance):
    """Largest |server distance - true distance| over ``returned`` ({query index: (rows, server distances)}),
    None when the server sent no distances.

    >>> data = np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> distance_error(np.array([[0.0, 0.0]]), data, {0: ([1, 0], [25.5, 0.0])}, "l2")
    0.5
    """
    diffs = []
    for i, (rows, server) in returned.items():
        if rows and server and server[0] is not None:
            true = distances(queries[i:i + 1], data[np.asarray(rows)], distance)[0]
            diffs.append(float(np.max(np.abs(true - np.asarray(server, dtype=np.float64)))))
    return max(diffs) if diffs else None
