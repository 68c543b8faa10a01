"""Chroma's HTTP v2 API as the benchmark speaks it: URLs, request bodies, reading the answers. Pure.

Default tenant and database; collections under
``/api/v2/tenants/{tenant}/databases/{database}/collections``. Vectors are ids ``v<row>`` (the row in
the seeded data), so a query's answer maps straight back to rows. Embeddings go as base64 of
little-endian float32 when the server's pre-flight checks say it takes them (as Chroma's own client
sends them), else as JSON lists; query vectors always go as lists.
"""
import base64

import numpy as np

__all__ = ("TENANT", "DATABASE", "server_url", "api_base", "collections_url", "is_heartbeat", "encode_embeddings",
           "create_body", "collection_hnsw", "add_body", "query_body", "returned_rows")

TENANT = "default_tenant"
DATABASE = "default_database"
HNSW_OPTIONS = ("ef_search", "ef_construction", "max_neighbors")


def server_url(host, port, url=None):
    """Chroma's base URL: ``url`` when given (scheme and path prefix kept), else host and port
    (an IPv6 address in brackets).

    >>> server_url("127.0.0.1", 8000), server_url("::1", 8000), server_url("h", 443, "https://h/chroma/")
    ('http://127.0.0.1:8000', 'http://[::1]:8000', 'https://h/chroma')
    """
    if url:
        return url.rstrip("/")
    return "http://%s:%d" % (host if ":" not in host else "[%s]" % host, port)


def api_base(host, port, url=None):
    """The v2 API's base URL (``server_url`` + ``/api/v2``).

    >>> api_base("127.0.0.1", 8000)
    'http://127.0.0.1:8000/api/v2'
    """
    return server_url(host, port, url) + "/api/v2"


def collections_url(base):
    """
    >>> collections_url("http://h:1/api/v2")
    'http://h:1/api/v2/tenants/default_tenant/databases/default_database/collections'
    """
    return "%s/tenants/%s/databases/%s/collections" % (base, TENANT, DATABASE)


def is_heartbeat(answer):
    """Whether ``GET /heartbeat`` answered like Chroma's v2 API.

    >>> is_heartbeat({"nanosecond heartbeat": 1}), is_heartbeat({"status": "ok"})
    (True, False)
    """
    return isinstance(answer, dict) and "nanosecond heartbeat" in answer


def encode_embeddings(vectors, base64_ok):
    """Embeddings as Chroma takes them: base64 of little-endian float32 (when the server says so) or lists.

    >>> encode_embeddings(np.array([[1.0, 0.0]], dtype=np.float32), True), encode_embeddings(np.array([[0.5]]), False)
    (['AACAPwAAAAA='], [[0.5]])
    """
    if base64_ok:
        raw = np.ascontiguousarray(vectors, dtype="<f4")
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in raw]
    return vectors.tolist()


def create_body(name, distance, options):
    """The body creating collection ``name`` in ``distance`` with the HNSW ``options`` given (None: server's).

    >>> create_body("c", "l2", {"ef_search": 50, "max_neighbors": None})
    {'name': 'c', 'configuration': {'hnsw': {'space': 'l2', 'ef_search': 50}}, 'get_or_create': False}
    """
    hnsw = {"space": distance}
    for key in HNSW_OPTIONS:
        if options.get(key) is not None:
            hnsw[key] = options[key]
    return {"name": name, "configuration": {"hnsw": hnsw}, "get_or_create": False}


def collection_hnsw(made):
    """The HNSW configuration of a created collection (the answer to the create call), as the server made it.

    >>> collection_hnsw({"id": "x", "configuration_json": {"hnsw": {"space": "ip", "ef_search": 100, "sync": 1}}})
    {'space': 'ip', 'ef_search': 100}
    """
    config = (made.get("configuration_json") or {}).get("hnsw") or {}
    return {k: config.get(k) for k in ("space",) + HNSW_OPTIONS if k in config}


def add_body(start, rows, base64_ok):
    """The ``/add`` body of the data rows ``start ..``: ids ``v<row>``.

    >>> add_body(3, np.zeros((2, 1), dtype=np.float32), False)
    {'ids': ['v3', 'v4'], 'embeddings': [[0.0], [0.0]]}
    """
    return {"ids": ["v%d" % i for i in range(start, start + len(rows))],
            "embeddings": encode_embeddings(rows, base64_ok)}


def query_body(vector, n_results):
    """The ``/query`` body of one query vector (distances included, to check the metric).

    >>> query_body(np.array([1.0, 2.0]), 3)
    {'query_embeddings': [[1.0, 2.0]], 'n_results': 3, 'include': ['distances']}
    """
    return {"query_embeddings": [vector.tolist()], "n_results": n_results, "include": ["distances"]}


def returned_rows(answer):
    """``(data rows, server distances)`` of a one-query ``/query`` answer (distances None when not sent).

    >>> returned_rows({"ids": [["v7", "v2"]], "distances": [[0.5, 0.75]]})
    ([7, 2], [0.5, 0.75])
    >>> returned_rows({"ids": [["v1"]]})
    ([1], [None])
    """
    ids = answer["ids"][0]
    return [int(x[1:]) for x in ids], (answer.get("distances") or [[None] * len(ids)])[0]
