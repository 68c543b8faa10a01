"""PostgreSQL: a data directory initialised inside the job (``initdb``, once), the server in the
foreground, then the recipe's role and database.

PostgreSQL refuses to run as root, so the job fails at once when it is root.
Debian keeps the server programs off ``PATH`` (``/usr/lib/postgresql/<version>/bin``):
with the host runtime the job finds them (``pg_config --bindir``, else the newest
such directory); a container image has them on its ``PATH``.

The recipe's password never reaches the script: the role gets a SCRAM-SHA-256
verifier computed here (RFC 5802 and 7677, PostgreSQL's format and SASLprep), and
the job's own connections go over a unix socket with ``peer`` authentication.
"""
import base64
import hashlib
import hmac
import stringprep
import unicodedata

from orch import schema
from orch.kinds.common import command_with, setting
from orch.kinds.service import service_kind
from orch.quoting import Literal, Raw, heredoc, shell_line, word
from orch.sections import banner, in_environment, recipe_word, service_port

__all__ = ("KIND", "saslprep", "scram_verifier", "bootstrap_sql", "hba_text")

# the server itself, as a recipe\'s command may name it: args given to it get orch\'s flags after them
PROGRAMS = ("postgres",)

PORT = 5432
SOURCE = "docker://postgres:16"
ITERATIONS = 4096  # PostgreSQL's scram_iterations default

# ------------------------------------------------------------ the password, as PostgreSQL stores it

_PROHIBITED = (
    stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22, stringprep.in_table_c3,
    stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
    stringprep.in_table_c8, stringprep.in_table_c9, stringprep.in_table_a1,
)


def saslprep(password):
    """The bytes PostgreSQL hashes for ``password`` (``pg_saslprep``): SASLprep'd UTF-8, or the raw bytes
    when SASLprep refuses the text (as libpq and the server both do).

    >>> saslprep("pass word"), saslprep("I\\u2168"), saslprep("a\\u00a0b\\u00adc")
    (b'pass word', b'IIX', b'a bc')
    """
    raw = password.encode("utf-8")
    if password.isascii():
        return raw
    # non-ASCII spaces become a space first; then "commonly mapped to nothing" goes
    mapped = "".join(" " if stringprep.in_table_c12(c) else "" if stringprep.in_table_b1(c) else c for c in password)
    normal = unicodedata.normalize("NFKC", mapped)
    if not normal or any(test(c) for c in normal for test in _PROHIBITED):
        return raw
    if any(stringprep.in_table_d1(c) for c in normal) and (
            any(stringprep.in_table_d2(c) for c in normal)
            or not (stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1]))):
        return raw
    return normal.encode("utf-8")


def scram_verifier(password, salt, iterations=ITERATIONS):
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``: what ``PASSWORD '...'`` stores as it is.

    >>> scram_verifier("pw", b"0123456789abcdef").startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$")
    True
    """
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    text = [base64.b64encode(part).decode("ascii") for part in (salt, stored, server)]
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, text[0], text[1], text[2])


def _salt(job, user):
    # the same recipe renders the same bytes: the salt comes from the job, not from a random source
    return hashlib.sha256(("orch postgres\0%s\0%s" % (job.job_name, user)).encode("utf-8")).digest()[:16]


# ------------------------------------------------------------ where things are


def data_dir(job):
    """The recipe's ``data_directory``, else the one its args give the server (``-D``), else orch's."""
    value = setting(job, "data_directory")
    return value or _args_data_dir(job) or Raw('"$ORCH_RUN_DIR/postgres-data"')


def _args_data_dir(job):
    args = list(job.args or ())
    for index, arg in enumerate(args):
        if arg == "-D" and index + 1 < len(args):
            return recipe_word(job, args[index + 1])
        if arg.startswith("--pgdata="):
            return recipe_word(job, arg.split("=", 1)[1])
        if arg.startswith("-D") and len(arg) > 2:
            return recipe_word(job, arg[2:])
    return None


def database_of(job):
    """The recipe's database; with only a user, a database of that name (as the official image does)."""
    return setting(job, "database") or setting(job, "user")


def _superuser():
    # initdb makes the job's own user the superuser; peer authentication lets exactly that user in
    return Raw('"$(id -un)"')


def _psql(job, database, script):
    return in_environment(job, (
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", Raw('"$ORCH_PG_SOCKETS"'),
        "-p", str(service_port(job, PORT)), "-U", _superuser(), "-d", database, "-f", script,
    ))


# ------------------------------------------------------------ sections


def programs(job):
    """Fail at once as root; on the host, put the server programs on ``PATH`` when Debian keeps them off it."""
    lines = list(banner("postgres programs"))
    lines.extend((
        'if [ "$(id -u)" -eq 0 ]; then',
        '    orch_fail "postgres refuses to run as root: submit this job as an unprivileged user" 1',
        "fi",
    ))
    if job.runtime != "host":
        return tuple(lines)
    return tuple(lines) + (
        "if ! command -v postgres >/dev/null 2>&1 || ! command -v initdb >/dev/null 2>&1; then",
        "    orch_pg_bin=$(pg_config --bindir 2>/dev/null) || orch_pg_bin=",
        '    if [ ! -x "$orch_pg_bin/postgres" ]; then',
        "        orch_pg_bin=$(printf '%s\\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)",
        "    fi",
        '    if [ ! -x "$orch_pg_bin/postgres" ] || [ ! -x "$orch_pg_bin/initdb" ]; then',
        '        orch_fail "postgres is not installed: not on PATH, not in pg_config --bindir, not in /usr/lib/postgresql/*/bin" 1',
        "    fi",
        '    PATH="$orch_pg_bin:$PATH"',
        "    export PATH",
        '    orch_log "PostgreSQL programs from $orch_pg_bin"',
        "fi",
    )


def hba_text(job):
    """pg_hba.conf: the job's own user over the unix socket (peer); over TCP a password when the recipe sets one."""
    method = "scram-sha-256" if setting(job, "password") else "trust"
    return "\n".join((
        "# written by orch for this job: the unix socket lets in the job's own user (peer);",
        "# TCP logins %s" % ("need the role's password" if method != "trust" else "are trusted: the recipe sets no password"),
        "local all all peer",
        "host all all all %s" % method,
    )) + "\n"


def setup(job):
    """The socket directory, the data directory (``initdb`` once per data directory) and pg_hba.conf."""
    wrap = in_environment
    data = data_dir(job)
    initialised = wrap(job, ("test", "-s", Raw(word(data) + "/PG_VERSION")))
    initdb = wrap(job, ("initdb", "-D", data, "--no-locale", "--encoding=UTF8", "--auth-local=peer", "--auth-host=scram-sha-256"))
    lines = list(banner("socket directory, data directory, pg_hba.conf"))
    lines.extend((
        'ORCH_PG_SOCKETS="$ORCH_RUN_DIR/sockets"',
        # a unix socket's path is at most 107 bytes: under a long run directory the socket goes to TMPDIR
        'if [ "${#ORCH_PG_SOCKETS}" -gt 90 ]; then ORCH_PG_SOCKETS="${TMPDIR:-/tmp}/orch-$ORCH_JOB"; fi',
        'if ! mkdir -p "$ORCH_PG_SOCKETS" || [ ! -O "$ORCH_PG_SOCKETS" ] || ! chmod 700 "$ORCH_PG_SOCKETS"; then',
        '    orch_fail "cannot make the socket directory $ORCH_PG_SOCKETS (this user\'s own)" 1',
        "fi",
        "if ! %s; then" % shell_line(*initialised),
        "    %s >\"$ORCH_RUN_DIR/logs/postgres-init.log\" 2>&1 || orch_fail 'initdb failed (logs/postgres-init.log)' 1"
        % shell_line(*initdb),
        "fi",
    ))
    lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/pg_hba.conf"'), hba_text(job)))
    return tuple(lines)


# orch stops a service with TERM, which PostgreSQL takes as a smart shutdown: it waits for every client to
# disconnect (its backends lead process groups of their own, so the group's TERM does not reach them), and a
# job stopped under load would be KILLed after the grace time. This shell turns TERM into INT, a fast
# shutdown: clients disconnected, a checkpoint, exit 0. (sh: every image has one.)
FAST_SHUTDOWN = Literal(
    'trap \'stop=1; kill -INT "$child" 2>/dev/null\' TERM INT; child=; stop=; "$@" & child=$!; '
    '[ -z "$stop" ] || kill -INT "$child"; wait "$child"; status=$?; '
    'while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done; exit "$status"'
)


def command(job):
    return ("sh", "-c", FAST_SHUTDOWN, "orch-postgres") + server(job)


def server(job):
    """orch's arguments; with the recipe's args, after them what they leave out of the data directory, socket
    directory and pg_hba.conf orch sets up, the recipe's own fields and ``ports[0]``."""
    extra, appended = (), []
    if setting(job, "max_connections") is not None:
        extra += ("-c", "max_connections=%d" % setting(job, "max_connections"))
        appended.append(("-c max_connections", extra[-2:]))
    if setting(job, "shared_buffers"):
        extra += ("-c", "shared_buffers=%s" % setting(job, "shared_buffers"))
        appended.append(("-c shared_buffers", extra[-2:]))
    orch_own = (
        ("-D", ("-D", data_dir(job))),
        ("-c unix_socket_directories", ("-c", Raw('unix_socket_directories="$ORCH_PG_SOCKETS"'))),
        ("-c hba_file", ("-c", Raw('hba_file="$ORCH_RUN_DIR/state/pg_hba.conf"'))),
    )
    port = ((("-p", ("-p", str(service_port(job, PORT)))),) if job.ports else ())
    return command_with(job, "postgres", (
        "-D", data_dir(job),
        "-p", str(service_port(job, PORT)),
        "-c", Raw('listen_addresses="$ORCH_BIND"'),
        "-c", Raw('unix_socket_directories="$ORCH_PG_SOCKETS"'),
        "-c", Raw('hba_file="$ORCH_RUN_DIR/state/pg_hba.conf"'),
    ) + extra, orch_own + tuple(appended) + port, PROGRAMS)


def probe(job):
    # 0 only once the server accepts connections (1 while it starts up, 2 when nothing answers)
    return in_environment(job, ("pg_isready", "-q", "-h", Raw('"$ORCH_LOCAL"'), "-p", str(service_port(job, PORT))))


def _identifier(name):
    return '"%s"' % name  # validated names: letters, digits and _ only


def bootstrap_sql(job):
    """psql script run once the server is ready: the role (its SCRAM verifier, never the password) and the database.

    >>> print(bootstrap_sql(__import__("orch.recipe").recipe.parse_job("service:\\n  name: postgres\\n  database: db\\n")), end="")
    SELECT 'CREATE DATABASE "db"' WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = 'db')\\gexec
    """
    user = setting(job, "user")
    database = database_of(job)
    password = setting(job, "password")
    lines = []
    if user:
        literal = "'%s'" % user
        lines.append("DO $orch$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %s) "
                     "THEN CREATE ROLE %s LOGIN; END IF; END $orch$;" % (literal, _identifier(user)))
        secret = "'%s'" % scram_verifier(password, _salt(job, user)) if password else "NULL"
        lines.append("ALTER ROLE %s WITH LOGIN PASSWORD %s;" % (_identifier(user), secret))
    elif password:
        # a password and no user: the superuser's (as the official image does), so TCP logins are possible
        lines.append("ALTER ROLE CURRENT_USER WITH PASSWORD '%s';" % scram_verifier(password, _salt(job, "")))
    if database:
        owner = " OWNER %s" % _identifier(user) if user else ""
        lines.append("SELECT 'CREATE DATABASE %s%s' WHERE NOT EXISTS "
                     "(SELECT FROM pg_catalog.pg_database WHERE datname = '%s')\\gexec" % (_identifier(database), owner, database))
        if user:
            lines.append("ALTER DATABASE %s OWNER TO %s;" % (_identifier(database), _identifier(user)))
    return "\n".join(lines) + "\n" if lines else ""


def bootstrap(job):
    """The role and database, then the recipe's ``init_script`` once per data directory."""
    wrap = in_environment
    sql = bootstrap_sql(job)
    if not sql and not job.init_script:
        return ()
    lines = list(banner("role, database, init_script"))
    log = '>>"$ORCH_RUN_DIR/logs/postgres-bootstrap.log" 2>&1'
    if sql:
        lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/bootstrap.sql"'), sql))
        lines.append("%s %s || orch_fail 'creating the role and database failed (logs/postgres-bootstrap.log)' 1"
                     % (shell_line(*_psql(job, "postgres", Raw('"$ORCH_RUN_DIR/state/bootstrap.sql"'))), log))
    if job.init_script:
        marker = Raw(word(data_dir(job)) + "/orch-init_script.done")
        run = _psql(job, database_of(job) or "postgres", Raw('"$ORCH_RUN_DIR/state/init.sql"'))
        lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/init.sql"'), job.init_script))
        # like the official images' initdb scripts: once per data directory
        lines.append("if ! %s; then" % shell_line(*wrap(job, ("test", "-e", marker))))
        lines.append("    %s %s || orch_fail 'init_script failed (logs/postgres-bootstrap.log)' 1" % (shell_line(*run), log))
        lines.append("    %s" % shell_line(*wrap(job, ("touch", marker))))
        lines.append("else")
        lines.append("    orch_log %s" % word("init_script already ran on this data directory: not run again"))
        lines.append("fi")
    return tuple(lines)


NAME = dict(pattern=r"(?!pg_)[A-Za-z_][A-Za-z0-9_]{0,62}", hint="a plain name (letters, digits, _; not starting with pg_)")
PASSWORD = dict(pattern=r"[^\r\n\x00]*", hint="a password on one line")

KIND = service_kind(
    "postgres",
    "PostgreSQL server (initdb once per data directory; role, database, init_script; refuses root)",
    fields={
        "database": schema.Text(**NAME),
        "user": schema.Text(**NAME),
        "password": schema.Text(**PASSWORD),
        "data_directory": schema.Text(allow_empty=False),
        "max_connections": schema.Integer(1, 262143),
        "shared_buffers": schema.Text(pattern=r"\d+(?:kB|MB|GB|TB)?", hint="a PostgreSQL memory size (e.g. 128MB, 2GB)"),
    },
    env_fields={"POSTGRES_USER": "user", "POSTGRES_PASSWORD": "password", "POSTGRES_DB": "database"},
    port=PORT,
    docker_source=SOURCE,
    command=command,
    probe=probe,
    endpoint_schemes=("postgres", "postgresql"),
    setup=(programs, setup),
    ready=(bootstrap,),
    init_script=True,
    arg_options={
        "data_directory": ("-D", "--pgdata"),
        "max_connections": ("-c max_connections", "--max_connections", "--max-connections", "-N"),
        "shared_buffers": ("-c shared_buffers", "--shared_buffers", "--shared-buffers", "-B"),
    },
    programs=PROGRAMS,
)
