"""Redis: ``redis-server`` with orch's config (persistence, maxmemory, password)."""
from orch import schema
from orch.kinds.common import command_with, setting
from orch.kinds.service import service_kind
from orch.quoting import Literal, Raw, heredoc
from orch.sections import banner, in_environment, service_port

__all__ = ("KIND", "config_text", "redis_string")

# the server itself, as a recipe\'s command may name it: args given to it get orch\'s flags after them
PROGRAMS = ("redis-server",)

PORT = 6379
# the older tool wrote the config it generated to this path in its container and ran redis-server on it,
# whatever else its recipes' args said: as args, it means "the generated config", which orch writes itself
SEED_CONFIG_ARGS = ("/redis/config/redis.conf",)


def redis_string(value):
    """``value`` as a double-quoted redis.conf string (the config parser's own escapes).

    >>> redis_string('a"b\\\\c')
    '"a\\\\"b\\\\\\\\c"'
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"%s"' % escaped


PERSISTENCE = {
    "none": ('save ""', "appendonly no"),
    "rdb": ("save 900 1 300 10 60 10000", "appendonly no"),
    "aof": ('save ""', "appendonly yes", "appendfsync everysec"),
    "both": ("save 900 1 300 10 60 10000", "appendonly yes", "appendfsync everysec"),
}


# with the recipe's args, orch's config carries only the recipe's own fields; an arg setting the same is refused
ARG_OPTIONS = {"persistence": ("--save", "--appendonly", "--appendfsync"), "maxmemory": ("--maxmemory",),
               "password": ("--requirepass",)}


def recipe_args(job):
    """The job, its args dropped when they are the older tool's generated config (``SEED_CONFIG_ARGS``)."""
    return job.set(args=None) if job.args == SEED_CONFIG_ARGS else job


def config_text(job):
    """redis.conf for this job: persistence, memory limit, password. Bind, port and dir go on the command line.

    With the recipe's ``args`` it holds only the fields the recipe sets (it is included after the
    args, whose own config file and options stay as they are for everything else).
    """
    job = recipe_args(job)
    lines = []
    if job.args is None:
        lines.extend(("protected-mode no", "daemonize no"))
        lines.extend(PERSISTENCE[setting(job, "persistence", "none")])
    elif setting(job, "persistence"):
        lines.extend(PERSISTENCE[setting(job, "persistence")])
    maxmemory = setting(job, "maxmemory")
    if maxmemory:
        lines.append("maxmemory %s" % maxmemory)
    password = setting(job, "password")
    if password:
        lines.append("requirepass %s" % redis_string(password))
    return "".join(line + "\n" for line in lines)


def setup(job):
    text = config_text(job)
    return banner("redis configuration") + (
        'mkdir -p "$ORCH_RUN_DIR/redis-data"',
    ) + (heredoc(Raw('"$ORCH_RUN_DIR/state/redis.conf"'), text) if text else ())


def command(job):
    port = service_port(job, PORT)
    job = recipe_args(job)
    conf = Raw('"$ORCH_RUN_DIR/state/redis.conf"')
    appended = []
    if any(setting(job, name) for name in ARG_OPTIONS):
        appended.append(("--include", ("--include", conf)))
    if job.ports:
        appended.append(("--port", ("--port", str(port))))
    return command_with(
        job,
        "redis-server",
        (conf, "--port", str(port), "--bind", Raw('"$ORCH_BIND"'), "--dir", Raw('"$ORCH_RUN_DIR/redis-data"')),
        appended,
        PROGRAMS,
    )


def probe(job):
    # redis-cli exits 0 on an error reply (NOAUTH, LOADING): only PONG counts
    cli = in_environment(job, ("redis-cli", "-h", Raw('"$ORCH_LOCAL"'), "-p", str(service_port(job, PORT)), "ping"))
    return ("bash", "-c", Literal('"$@" | grep -q PONG'), "orch-probe") + tuple(cli)


def environment(job):
    # redis-cli reads the password from REDISCLI_AUTH, which keeps it off the command line;
    # Literal: the same characters as in redis.conf, where nothing expands
    password = setting(job, "password")
    return (("REDISCLI_AUTH", Literal(password)),) if password else ()


KIND = service_kind(
    "redis",
    "Redis in-memory store (redis-server; persistence none/rdb/aof/both, maxmemory, password)",
    fields={
        "persistence": schema.Text(choices=("none", "rdb", "aof", "both")),
        "maxmemory": schema.Text(pattern=r"\d+(?:[kKmMgG][bB]?|[bB])?", hint="a redis memory size (e.g. 512mb, 2gb)"),
        "password": schema.Text(),
    },
    env_fields={"REDIS_PERSISTENCE": "persistence", "REDIS_MAXMEMORY": "maxmemory", "REDIS_PASSWORD": "password"},
    port=PORT,
    docker_source="docker://redis:7-alpine",
    command=command,
    probe=probe,
    endpoint_schemes=("redis",),
    setup=(setup,),
    env=environment,
    arg_options=ARG_OPTIONS,
    programs=PROGRAMS,
)
