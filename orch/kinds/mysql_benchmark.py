"""mysql_benchmark: drives sysbench OLTP workloads against the target MySQL/MariaDB."""
from orch import schema
from orch.kinds.client import client_kind
from orch.sweep import fixed

__all__ = ("KIND",)

KIND = client_kind(
    "mysql_benchmark",
    target="mysql",
    summary="MySQL/MariaDB load with sysbench OLTP (num_connections, tables, table_size, workload)",
    parameters={
        "num_connections": schema.Numbers(1, 10000),
        "transactions_per_client": schema.Numbers(1),
        "tables": schema.Numbers(1, 10000),
        "table_size": schema.Numbers(1),
        "workload": schema.TextList(schema.Text(choices=("read_write", "read_only", "point_select", "write_only")), sweep=True),
        # default: MYSQL_USER / MYSQL_DATABASE from the environment, as the seed's recipes set them
        "user": schema.Text(),
        "database": schema.Text(),
        # the name of the environment variable that holds the password (MYSQL_PASSWORD), never the password
        "password_env": schema.Text(pattern=r"[A-Za-z_][A-Za-z0-9_]*", hint="an environment variable name"),
    },
    flags={
        "num_connections": "--threads",
        "transactions_per_client": "--transactions-per-client",
        "tables": "--tables",
        "table_size": "--table-size",
        "workload": "--workload",
        "user": "--user",
        "database": "--database",
        "password_env": "--password-env",
    },
    docker_source="docker://severalnines/sysbench",
    # what the load generator reads from its environment when no parameter says otherwise (the seed's names)
    reads=lambda parameters: ("MYSQL_USER", "MYSQL_DATABASE", fixed(parameters).get("password_env") or "MYSQL_PASSWORD"),
)
