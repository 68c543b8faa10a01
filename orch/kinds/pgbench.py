"""pgbench: drives PostgreSQL's own pgbench (initialise, then a timed run) against the target PostgreSQL."""
from orch import schema
from orch.kinds.client import client_kind, password_environment

__all__ = ("KIND",)

NAME = schema.Text(pattern=r"(?!pg_)[A-Za-z_][A-Za-z0-9_]{0,62}", hint="a plain name (letters, digits, _; not starting with pg_)")


KIND = client_kind(
    "pgbench",
    target="postgres",
    summary="PostgreSQL load with pgbench (clients, threads, scale, builtin, protocol, rate; lists sweep)",
    parameters={
        "clients": schema.Numbers(1, 10000),
        "threads": schema.Numbers(1, 1000),
        "transactions": schema.Numbers(1),
        "scale": schema.Numbers(1, 100000),
        "rate": schema.Numbers(1),
        "builtin": schema.TextList(schema.Text(choices=("tpcb-like", "simple-update", "select-only")), sweep=True),
        "protocol": schema.TextList(schema.Text(choices=("simple", "extended", "prepared")), sweep=True),
        "skip_init": schema.Boolean(),
        "user": NAME,
        "database": NAME,
        "password": schema.Text(pattern=r"[^\r\n\x00]*", hint="a password on one line"),
    },
    flags={
        "clients": "--clients",
        "threads": "--threads",
        "transactions": "--transactions",
        "scale": "--scale",
        "rate": "--rate",
        "builtin": "--builtin",
        "protocol": "--protocol",
        "skip_init": "--skip-init",
        "user": "--user",
        "database": "--database",
    },
    docker_source="docker://postgres:16",
    env=password_environment('PGPASSWORD'),
    # libpq's names, which the load generator reads when the parameters leave user, database or password out
    reads=lambda parameters: ("PGUSER", "PGDATABASE", "PGPASSWORD"),
)
