"""chroma_benchmark: inserts and queries generated vectors over Chroma's HTTP API."""
from orch import schema
from orch.kinds.client import client_kind

__all__ = ("KIND",)

KIND = client_kind(
    "chroma_benchmark",
    target="chroma",
    summary="Chroma insert and query load with recall@k (num_documents, dimension, batch_size, num_queries, top_k, distance, concurrency)",
    parameters={
        "num_documents": schema.Numbers(1),
        "dimension": schema.Numbers(1, 65536),
        "batch_size": schema.Numbers(1),
        "num_queries": schema.Numbers(1),
        "top_k": schema.Numbers(1, 10000),
        "collection_name": schema.Text(pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{1,62}[A-Za-z0-9]", hint="a Chroma collection name (3-64 characters)"),
        "collection_prefix": schema.Text(pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", hint="a collection name prefix"),
        "seed": schema.Integer(0),
        "distance": schema.Text(choices=("l2", "cosine", "ip")),  # the collection's hnsw space
        "concurrency": schema.Numbers(1, 1024),  # queries in flight (1: serial)
        "ef_search": schema.Numbers(1),
        "ef_construction": schema.Integer(1),
        "max_neighbors": schema.Integer(2),
    },
    aliases={
        "embedding_dimension": "dimension",
        "embedding_dimensions": "dimension",
        "batch_sizes": "batch_size",
        "metric": "distance",
        "space": "distance",
    },
    base_url=True,
    flags={
        "num_documents": "--num-documents",
        "dimension": "--dimension",
        "batch_size": "--batch-size",
        "num_queries": "--num-queries",
        "top_k": "--top-k",
        "collection_name": "--collection",
        "collection_prefix": "--collection-prefix",
        "seed": "--seed",
        "distance": "--distance",
        "concurrency": "--concurrency",
        "ef_search": "--ef-search",
        "ef_construction": "--ef-construction",
        "max_neighbors": "--max-neighbors",
    },
)
