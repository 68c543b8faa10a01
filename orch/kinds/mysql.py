"""MySQL / MariaDB: a data directory initialised inside the job, then the recipe's database and user.

The readiness check is ``mysqladmin ping``; the endpoint is published only
after the database, the user and the recipe's ``init_script`` are in place.
"""
from orch import schema
from orch.kinds.common import command_with, setting
from orch.kinds.service import service_kind
from orch.quoting import Raw, heredoc, shell_line, word
from orch.sections import banner, in_environment, recipe_word, service_port

__all__ = ("KIND", "sql_string", "bootstrap_sql", "option_file_value")

# the server itself, as a recipe\'s command may name it: args given to it get orch\'s flags after them
PROGRAMS = ("mysqld", "mariadbd")

PORT = 3306
SOURCE = "docker://mysql:8.0"
# an image runs MySQL (or MariaDB) as mysqld; Debian's host packages call it mariadbd
DEFAULT_PROGRAM = {"host": "mariadbd"}


def default_program(job):
    return DEFAULT_PROGRAM.get(job.runtime, "mysqld")


def sql_string(value):
    """``value`` as a SQL string literal (quotes doubled, backslashes escaped).

    >>> sql_string("it's \\\\ x")
    "'it''s \\\\\\\\ x'"
    """
    return "'%s'" % value.replace("\\", "\\\\").replace("'", "''")


def option_file_value(value):
    """``value`` as a double-quoted value in a MySQL option file."""
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _arg(job, name):
    """The value of ``name=...`` among the recipe's args (its recipe variables in place), or None."""
    for arg in job.args or ():
        if arg.startswith(name + "="):
            return recipe_word(job, arg.split("=", 1)[1])
    return None


DATA_DIR = Raw('"$ORCH_RUN_DIR/mysql-data"')
# a unix socket path must stay under ~100 bytes: keep it out of the (long) run directory
SOCKET = Raw('"${TMPDIR:-/tmp}/orch-$ORCH_JOB.sock"')


def data_dir(job):
    return _arg(job, "--datadir") or DATA_DIR


def socket(job):
    return _arg(job, "--socket") or SOCKET


def program(job):
    return recipe_word(job, job.command) if job.command else default_program(job)


def command(job):
    """orch's arguments; with the recipe's args, orch's data directory and socket after them unless they name their own
    (the setup, the readiness check and the bootstrap use the same), and ``ports[0]`` unless they name a port."""
    port = "--port=%d" % service_port(job, PORT)
    appended = [("--datadir", (Raw("--datadir=" + DATA_DIR),)), ("--socket", (Raw("--socket=" + SOCKET),))]
    if job.ports:
        appended.append(("--port", (port,)))
    return command_with(job, default_program(job), (
        Raw("--datadir=" + DATA_DIR),
        Raw("--socket=" + SOCKET),
        Raw('--pid-file="$ORCH_RUN_DIR/state/mysqld.pid"'),
        port,
        Raw('--bind-address="$ORCH_BIND"'),
        Raw('--user="$(id -un)"'),
        "--loose-mysqlx=OFF",
    ), appended, PROGRAMS)


def setup(job):
    """Initialise an empty data directory with whichever tool the image or host has."""
    wrap = in_environment
    has_mariadb = wrap(job, ("sh", "-c", "command -v mariadb-install-db"))
    mariadb = wrap(job, ("mariadb-install-db", Raw("--datadir=" + word(data_dir(job))), Raw('--user="$(id -un)"'),
                         "--auth-root-authentication-method=normal", "--skip-test-db"))
    mysql = wrap(job, (program(job), "--initialize-insecure", Raw("--datadir=" + word(data_dir(job))), Raw('--user="$(id -un)"')))
    # the data directory may be a path inside the container (the seed's --datadir=/mysql/data): look there
    initialised = wrap(job, ("test", "-d", Raw(word(data_dir(job)) + "/mysql")))
    return banner("data directory") + (
        "if ! %s; then" % shell_line(*initialised),
        "    %s" % shell_line(*wrap(job, ("mkdir", "-p", data_dir(job)))),
        "    if %s >/dev/null 2>&1; then" % shell_line(*has_mariadb),
        "        %s >\"$ORCH_RUN_DIR/logs/mysql-init.log\" 2>&1 || orch_fail 'mariadb-install-db failed (logs/mysql-init.log)' 1"
        % shell_line(*mariadb),
        "    else",
        "        %s >\"$ORCH_RUN_DIR/logs/mysql-init.log\" 2>&1 || orch_fail 'mysqld --initialize-insecure failed (logs/mysql-init.log)' 1"
        % shell_line(*mysql),
        "    fi",
        "fi",
    )


def probe(job):
    # 0 once the server answers, even with "Access denied" (a data directory whose root has a password)
    return in_environment(job, ("mysqladmin", _socket_option(job), "-uroot", "ping"))


def bootstrap_sql(job):
    """SQL run once as root: anonymous users gone, the recipe's database and user, root's password."""
    database = setting(job, "database")
    user = setting(job, "user")
    password = setting(job, "password", "")
    root_password = setting(job, "root_password")
    lines = [
        "SET @orch_drop = CONCAT('DROP USER IF EXISTS ''''@''', @@hostname, '''');",
        "PREPARE orch_statement FROM @orch_drop;",
        "EXECUTE orch_statement;",
        "DROP USER IF EXISTS ''@'localhost';",
    ]
    if database:
        lines.append("CREATE DATABASE IF NOT EXISTS `%s`;" % database)
    if user:
        for host in ("%", "localhost"):
            lines.append("CREATE USER IF NOT EXISTS %s@'%s' IDENTIFIED BY %s;" % (sql_string(user), host, sql_string(password)))
            if database:
                lines.append("GRANT ALL PRIVILEGES ON `%s`.* TO %s@'%s';" % (database, sql_string(user), host))
    if root_password:
        lines.append("ALTER USER 'root'@'localhost' IDENTIFIED BY %s;" % sql_string(root_password))
    lines.append("FLUSH PRIVILEGES;")
    return "\n".join(lines) + "\n"


def client_config(job):
    root_password = setting(job, "root_password")
    lines = ["[client]", "user=root"]
    if root_password:
        lines.append("password=%s" % option_file_value(root_password))
    return "\n".join(lines) + "\n"


def root_login(job):
    """Lines that set ``orch_root``, the options root logs in with.

    A fresh data directory's root has no password. One that an earlier run of
    this job set up (the same run directory, or the recipe's own ``--datadir``)
    already has the recipe's ``root_password``: then the option file holds it.
    """
    if not setting(job, "root_password"):
        return ("orch_root=(-uroot)",)
    check = in_environment(job, ("mysql", Raw('"${orch_root[@]}"'), _socket_option(job), "-e", "SELECT 1"))
    return (
        "orch_root=(-uroot)",
        "if ! %s >/dev/null 2>&1; then" % shell_line(*check),
        '    orch_root=(--defaults-extra-file="$ORCH_RUN_DIR/state/client.cnf")',
        "fi",
    )


def _socket_option(job):
    return Raw("--socket=" + word(socket(job)))


def init_marker(job):
    """The file that says the recipe's ``init_script`` ran on this data directory (it travels with the data)."""
    return Raw(word(data_dir(job)) + "/orch-init_script.done")


def bootstrap(job):
    wrap = in_environment
    sock = _socket_option(job)
    as_root = wrap(job, ("mysql", Raw('"${orch_root[@]}"'), sock))
    after = wrap(job, ("mysql", Raw('--defaults-extra-file="$ORCH_RUN_DIR/state/client.cnf"'), sock))
    lines = list(banner("database, user, init_script"))
    lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/bootstrap.sql"'), bootstrap_sql(job)))
    # the option file holds root's password: readable by this user only, from its first byte
    lines.append('orch_umask=$(umask); umask 077')
    lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/client.cnf"'), client_config(job)))
    lines.append('umask "$orch_umask"')
    lines.extend(root_login(job))
    lines.append('%s < "$ORCH_RUN_DIR/state/bootstrap.sql" || orch_fail "creating the database and user failed" 1' % shell_line(*as_root))
    if job.init_script:
        # like the official images' initdb scripts: once per data directory, so a second run
        # on the same data does not trip over its own CREATE TABLE
        lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/init.sql"'), job.init_script))
        lines.append("if ! %s; then" % shell_line(*wrap(job, ("test", "-e", init_marker(job)))))
        lines.append('    %s < "$ORCH_RUN_DIR/state/init.sql" || orch_fail "init_script failed" 1' % shell_line(*after))
        lines.append("    %s" % shell_line(*wrap(job, ("touch", init_marker(job)))))
        lines.append("else")
        lines.append("    orch_log %s" % word("init_script already ran on this data directory: not run again"))
        lines.append("fi")
    return tuple(lines)


IDENT = dict(pattern=r"[A-Za-z0-9_]{1,64}", hint="a plain name (letters, digits, _)")

KIND = service_kind(
    "mysql",
    "MySQL/MariaDB server (data directory initialised in the job; database, user, init_script)",
    fields={
        "root_password": schema.Text(),
        "database": schema.Text(**IDENT),
        "user": schema.Text(pattern=r"[A-Za-z0-9_.-]{1,32}", hint="a plain user name"),
        "password": schema.Text(),
    },
    env_fields={
        "MYSQL_ROOT_PASSWORD": "root_password",
        "MYSQL_DATABASE": "database",
        "MYSQL_USER": "user",
        "MYSQL_PASSWORD": "password",
    },
    port=PORT,
    docker_source=SOURCE,
    command=command,
    probe=probe,
    endpoint_schemes=("mysql",),
    setup=(setup,),
    ready=(bootstrap,),
    init_script=True,
    programs=PROGRAMS,
)
