"""redis_benchmark: drives redis-benchmark against the target Redis."""
from orch import schema
from orch.kinds.client import client_kind, password_environment

__all__ = ("KIND",)

KIND = client_kind(
    "redis_benchmark",
    target="redis",
    summary="Redis load with redis-benchmark (clients, data_size, pipeline, tests, requests; lists sweep)",
    parameters={
        "clients": schema.Numbers(1, 100000),
        "data_size": schema.Numbers(1, 512 * 1024 * 1024),
        "pipeline": schema.Numbers(1, 100000),
        "requests": schema.Numbers(1),
        "tests": schema.TextList(schema.Text(pattern=r"[A-Za-z_]+", hint="a redis-benchmark test name"), split_commas=True),
        "key_size": schema.Integer(1),
        "keyspace": schema.Integer(1),
        "threads": schema.Integer(1, 256),
        "test_persistence": schema.Boolean(),
        "password": schema.Text(),
    },
    aliases={
        "client_counts": "clients",
        "data_sizes": "data_size",
        "value_size": "data_size",
        "pipeline_depths": "pipeline",
        "num_operations": "requests",
        "operations_per_test": "requests",
    },
    flags={
        "clients": "--clients",
        "data_size": "--data-size",
        "pipeline": "--pipeline",
        "requests": "--requests",
        "tests": "--tests",
        "key_size": "--key-size",
        "keyspace": "--keyspace",
        "threads": "--threads",
        "test_persistence": "--test-persistence",
    },
    docker_source="docker://redis:7-alpine",
    env=password_environment('REDISCLI_AUTH'),
)
