"""redis-benchmark itself: its tests (``-t`` names and the order it runs them in), the command lines orch gives it, its CSV.

Pure and standard library only: the load generator (``orch.clients.redis_benchmark``) runs
on compute nodes, and the kind (``orch.kinds.redis_benchmark``) checks recipes with the same table.

``redis-benchmark -t a,b`` runs the selected tests in its own fixed order, each once, and
silently skips a name it does not know (``src/redis-benchmark.c``, ``test_is_selected``).
orch runs one ``-t`` per test (so a run stopped part-way keeps what finished): in that same
order, each once, and it refuses an unknown name instead of skipping it.
"""

import csv

__all__ = ("ORDER", "GROUPS", "NAMES", "unknown", "selected_tests", "KEY_SIZE_MIN_RANDOM", "VALUE_MAX_WITH_KEY_SIZE",
           "key_size_problems", "keyed_commands", "invocations", "parse_csv", "overall_rate", "PROGRAM", "DEFAULT_REQUESTS", "REDACTED")

PROGRAM = "redis-benchmark"
DEFAULT_REQUESTS = 100000  # redis-benchmark's own default -n
REDACTED = "<redacted>"

# the tests of redis-benchmark 6.2-7.x, in the order it runs them
ORDER = (
    "ping_inline", "ping_mbulk", "set", "get", "incr", "lpush", "rpush", "lpop", "rpop", "sadd", "hset", "spop",
    "zadd", "zpopmin", "lrange_100", "lrange_300", "lrange_500", "lrange_600", "mset",
)
# names that select several tests
GROUPS = {"ping": ("ping_inline", "ping_mbulk"), "lrange": ("lrange_100", "lrange_300", "lrange_500", "lrange_600")}
NAMES = tuple(sorted(ORDER + tuple(GROUPS)))


def unknown(names):
    """The names (any case) that are not redis-benchmark tests, in the order given.

    >>> unknown(["SET", "hget", "ping"])
    ['hget']
    """
    return [name for name in names if name.lower() not in NAMES]


def _members(name):
    return GROUPS.get(name, (name,))


def selected_tests(names):
    """The tests ``redis-benchmark -t <names>`` runs, as ``-t`` names: lower case, each once, in its order.

    A name a group also given covers is left out (``ping`` runs ``ping_inline``).

    >>> selected_tests(["GET", "set", "get"])
    ('set', 'get')
    >>> selected_tests(["lpush", "ping_inline", "ping", "lrange"])
    ('ping', 'lpush', 'lrange')
    """
    wanted = []
    for name in (n.lower() for n in names):
        if name not in wanted:
            wanted.append(name)
    covered = {member for name in wanted if name in GROUPS for member in GROUPS[name]}
    kept = [name for name in wanted if name in GROUPS or name not in covered]
    return tuple(sorted(kept, key=lambda name: ORDER.index(_members(name)[0])))


# ---------------------------------------------------------------- keys of a chosen size

# redis-benchmark's keys are fixed ("key:__rand_int__", "mylist", ...). With ``key_size`` orch runs
# each keyed test as the same command written out (redis-benchmark's command mode), with keys of
# that many bytes: one letter per data type (so a list never lands on a string's key), padded with
# "x"; with ``keyspace`` (-r) the string keys end in redis-benchmark's 12 random digits, as its own do.
RANDOM = "__rand_int__"
KEY_SIZE_MIN_RANDOM = 1 + 12
# written-out commands carry the value on their command line: MSET ten times
VALUE_MAX_WITH_KEY_SIZE = 65536
LRANGE_LAST = {"lrange_100": 99, "lrange_300": 299, "lrange_500": 449, "lrange_600": 599}
LRANGE_TITLE = {"lrange_100": "first 100 elements", "lrange_300": "first 300 elements",
                "lrange_500": "first 450 elements", "lrange_600": "first 600 elements"}


def _key(letter, size, random):
    if random:
        return letter + "x" * (size - 1 - len("000000000000")) + RANDOM
    return letter + "x" * (size - 1)


def key_size_problems(key_size, keyspace, data_sizes):
    """Why ``key_size`` cannot be honoured with these other parameters: a list of messages, empty when it can.

    >>> key_size_problems(10, 1000, (64,))
    ['10 is too short with keyspace: its keys end in 12 random digits after a letter (at least 13)']
    >>> key_size_problems(None, 1000, (10 ** 6,))
    []
    """
    if not key_size:
        return []
    problems = []
    if keyspace and key_size < KEY_SIZE_MIN_RANDOM:
        problems.append("%d is too short with keyspace: its keys end in 12 random digits after a letter (at least %d)"
                        % (key_size, KEY_SIZE_MIN_RANDOM))
    too_big = [size for size in data_sizes if size > VALUE_MAX_WITH_KEY_SIZE]
    if too_big:
        problems.append("the tests run written out, with the value on the command line: data_size %d is over %d"
                        % (max(too_big), VALUE_MAX_WITH_KEY_SIZE))
    return problems


def keyed_commands(test, key_size, value, random):
    """``[(row name, command words)]`` that run ``test`` with keys of ``key_size`` bytes; None for a test with no key (ping).

    + value: the value written (``data_size`` bytes)
    + random: redis-benchmark's ``-r`` is given: string keys, and sorted-set scores, are random as in its own tests
    Row names are redis-benchmark's own (lower case), so results read the same with or without ``key_size``.

    >>> keyed_commands("get", 4, "v", False)
    [('get', ['GET', 'kxxx'])]
    >>> keyed_commands("lrange_100", 3, "v", False)[1]
    ('lrange_100 (first 100 elements)', ['LRANGE', 'lxx', '0', '99'])
    >>> keyed_commands("ping", 8, "v", False) is None
    True
    """
    string_key, counter = _key("k", key_size, random), _key("c", key_size, random)
    lst, st, hsh, zst = (_key(letter, key_size, False) for letter in "lshz")
    element = "element:" + RANDOM
    single = {
        "set": ["SET", string_key, value],
        "get": ["GET", string_key],
        "incr": ["INCR", counter],
        "lpush": ["LPUSH", lst, value],
        "rpush": ["RPUSH", lst, value],
        "lpop": ["LPOP", lst],
        "rpop": ["RPOP", lst],
        "sadd": ["SADD", st, element],
        "hset": ["HSET", hsh, element, value],
        "spop": ["SPOP", st],
        "zadd": ["ZADD", zst, RANDOM if random else "0", element],
        "zpopmin": ["ZPOPMIN", zst],
        "mset": ["MSET"] + [string_key, value] * 10,
    }
    if test in single:
        return [(test if test != "mset" else "mset (10 keys)", single[test])]
    if test in GROUPS and test != "ping":
        found = [keyed_commands(member, key_size, value, random) for member in GROUPS[test]]
        return found[0][:1] + [pair for pairs in found for pair in pairs[1:]]
    if test in LRANGE_LAST:
        return [("lpush (needed to benchmark lrange)", ["LPUSH", lst, value]),
                ("%s (%s)" % (test, LRANGE_TITLE[test]), ["LRANGE", lst, "0", str(LRANGE_LAST[test])])]
    return None


def invocations(args, test, password=None):
    """``[(row name or None, words, shown)]``: the redis-benchmark runs of one test.

    A row name of None: redis-benchmark names its rows itself (``-t <test>``); else the
    single row of that run is the named one (a command written out for ``key_size``).
    ``shown`` is ``words`` with the password redacted.
    """
    common = list(args.wrap) + [
        PROGRAM, "-h", args.host, "-p", str(args.port), "-c", str(args.clients),
        "-n", str(args.requests or DEFAULT_REQUESTS), "-P", str(args.pipeline), "--csv",
    ]
    if args.keyspace:
        common += ["-r", str(args.keyspace)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    value = "x" * args.data_size
    keyed = keyed_commands(test, args.key_size, value, bool(args.keyspace)) if args.key_size else None
    runs = [(None, ["-d", str(args.data_size), "-t", test])] if keyed is None else keyed
    auth = (["-a", password], ["-a", REDACTED]) if password else ([], [])
    # the command (redis-benchmark's command mode) goes last, after every option; the record shows
    # the value by its size (keys start with a letter other than x, so only values are all x)
    return [(row, common + auth[0] + tail, common + auth[1] + [_shown(word, value) for word in tail]) for row, tail in runs]


def _shown(word, value):
    return "<%d bytes>" % len(value) if word == value else word


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


CSV_FIELDS = {
    "avg_latency_ms": "avg",
    "min_latency_ms": "min",
    "p50_latency_ms": "p50",
    "p95_latency_ms": "p95",
    "p99_latency_ms": "p99",
    "max_latency_ms": "max",
}


def parse_csv(text):
    """``{test name (lower case): {requests_per_s, latency_ms: {avg, min, p50, p95, p99, max}}}`` from ``--csv`` output.

    Read by header (7.x: test, rps, avg/min/p50/p95/p99/max_latency_ms); older versions
    print ``"test","rps"`` or no header at all (then the columns are test, rps).

    >>> parse_csv('"test","rps"\\n"SET","1000.00"\\n')["set"]["requests_per_s"]
    1000.0
    """
    rows = [row for row in csv.reader(line for line in text.splitlines() if line.strip()) if row]
    header = ["test", "rps"]
    tests = {}
    for row in rows:
        if row[0].strip().lower() == "test":
            header = [cell.strip().lower() for cell in row]
            continue
        values = dict(zip(header, row))
        rps = _number(values.get("rps"))
        if rps is None:
            continue
        latency = {name: _number(values[column]) for column, name in CSV_FIELDS.items() if column in values}
        tests[values["test"].strip().lower()] = {"requests_per_s": rps, "latency_ms": latency or None}
    return tests


def overall_rate(tests):
    """(completed, seconds, requests/s): sum of completed over sum of the tests' own times.

    >>> overall_rate({"set": {"requests": 100, "requests_per_s": 100.0}, "get": {"requests": 100, "requests_per_s": 50.0}})
    (200, 3.0, 66.66666666666667)
    """
    completed = sum(t["requests"] for t in tests.values())
    seconds = sum(t["requests"] / t["requests_per_s"] for t in tests.values() if t["requests_per_s"])
    return completed, seconds, (completed / seconds if seconds else None)
