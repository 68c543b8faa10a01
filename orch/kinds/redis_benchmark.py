"""redis_benchmark: drives redis-benchmark against the target Redis."""
from orch import schema
from orch.clients.redis_tool import NAMES, key_size_problems, selected_tests, unknown
from orch.kinds.client import client_kind, password_environment
from orch.sweep import Sweep

__all__ = ("KIND", "Tests")


class Tests:
    """redis-benchmark's ``-t`` list: names it knows (any case), as it runs them: in its own order, each once.

    redis-benchmark itself skips a name it does not know without a word; here that is a problem.
    """

    def __init__(self):
        self.names = schema.TextList(schema.Text(pattern=r"[A-Za-z0-9_]+", hint="a redis-benchmark test name"),
                                     split_commas=True)

    def read(self, node, path):
        names, problems = self.names.read(node, path)
        if problems:
            return None, problems
        if not names:
            return None, [(schema.line_of(node), path, "names no test (known: %s)" % ", ".join(NAMES))]
        if unknown(names):
            return None, [(schema.line_of(node), path, "not redis-benchmark tests: %s (known: %s)"
                           % (", ".join(repr(n) for n in unknown(names)), ", ".join(NAMES)))]
        return selected_tests(names), []


def _values(value):
    return tuple(value) if isinstance(value, Sweep) else (value,)


def check(parameters):
    """``key_size`` against ``keyspace`` and ``data_size`` (every value of a sweep)."""
    key_size = parameters.get("key_size")
    if key_size is None:
        return []
    keyspace = parameters.get("keyspace")
    return [("key_size", message) for message in
            key_size_problems(key_size, keyspace, _values(parameters.get("data_size", Sweep((3,)))))]


KIND = client_kind(
    "redis_benchmark",
    target="redis",
    summary="Redis load with redis-benchmark (clients, data_size, pipeline, tests, requests; lists sweep)",
    parameters={
        "clients": schema.Numbers(1, 100000),
        "data_size": schema.Numbers(1, 512 * 1024 * 1024),
        "pipeline": schema.Numbers(1, 100000),
        "requests": schema.Numbers(1),
        "tests": Tests(),
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
        # the seed's name for redis-benchmark's -t list once its client ran redis-benchmark itself
        "native_tests": "tests",
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
    check=check,
)
