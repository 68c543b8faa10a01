"""Section functions: ``Job -> tuple of lines``; a script is their concatenation.

Generic sections take only the job. Sections that need a kind's own piece
(its command, its probe) are curried: ``start(command)`` is a section.
``service_sections(...)`` and ``client_sections(...)`` assemble the standard
lists that the built-in kinds use and that a custom service can use too.
"""
from toolz import concat, curry

from orch import __version__
from orch.quoting import Literal, Raw, assignment, heredoc, sbatch_flag, shell_line, word
from orch.records import RESOURCE_FLAGS
from orch.runtimes import runtime_of

__all__ = (
    "render",
    "header",
    "preamble",
    "modules",
    "environment",
    "image",
    "setup_script",
    "start",
    "sidecars",
    "health",
    "publish",
    "wait_service",
    "wait_for_target",
    "benchmark",
    "service_sections",
    "client_sections",
    "http_probe",
    "tcp_probe",
    "service_port",
    "resource_values",
)


def render(job, sections):
    """Return the script: every section's lines, in order, one per line.

    >>> render(None, (lambda j: ("#!/bin/bash",), lambda j: ("true",)))
    '#!/bin/bash\\ntrue\\n'
    """
    return "\n".join(concat(section(job) for section in sections)) + "\n"


def banner(title):
    return ("", "# --- %s" % title)


def service_port(job, default=None):
    """The service's port: the recipe's first ``ports`` entry, else the kind's default."""
    return job.ports[0] if job.ports else default


def resource_values(job):
    """``(sbatch option, value)`` for every set resource; the site fills account/partition/qos gaps."""
    resources = job.resources
    fallback = {"account": job.site.account, "partition": job.site.partition, "qos": job.site.qos}
    values = []
    for field_name, option in RESOURCE_FLAGS:
        value = getattr(resources, field_name)
        if value is None:
            value = fallback.get(field_name)
        if value is not None:
            values.append((option, value))
    return tuple(values)


def header(job):
    """``#!/bin/bash`` and the ``#SBATCH`` directives."""
    array = array_flags(job)
    # an array's tasks each get their own log: %A is the array's job id, %a the task
    logs = "%s/logs/%%x-%s" % (job.run_dir, "%A_%a" if array else "%j")
    lines = [
        "#!/bin/bash",
        sbatch_flag("job-name", job.job_name),
        sbatch_flag("output", logs + ".out"),
        sbatch_flag("error", logs + ".err"),
        sbatch_flag("signal", "B:TERM@%d" % job.grace),
    ]
    lines.extend(sbatch_flag(option, value) for option, value in resource_values(job))
    lines.extend(array)
    lines.append("# rendered by orch %s: %s %s (%s runtime, %s site)" % (__version__, job.role, job.kind, job.runtime, job.site.name))
    return tuple(lines)


def array_flags(job):
    if not job.parameters:
        return ()
    from orch.sweep import combinations

    combos = combinations(job)
    if len(combos) <= 1:
        return ()
    return (sbatch_flag("array", "0-%d%%%d" % (len(combos) - 1, job.sweep_parallelism)),)


PREAMBLE = r"""set -o pipefail
orch_log() { printf '%s orch[%s]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ORCH_JOB" "$*" >&2; }
orch_mark() {
    # state markers are written whole or not at all: temp file, then rename
    local tmp="$ORCH_RUN_DIR/state/.$1.$$"
    printf '%s\n' "$2" > "$tmp" && mv -f "$tmp" "$ORCH_RUN_DIR/state/$1"
}
orch_pids=()
orch_stop_children() {
    local pid waited=0
    for pid in "${orch_pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; done
    for pid in "${orch_pids[@]}"; do
        # tenths of a second: most services are gone well within one
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((ORCH_STOP_WAIT * 10)) ]; do sleep 0.1; waited=$((waited + 1)); done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    orch_pids=()
}
orch_unpublish() { :; }
orch_unpublish_targets() { :; }
orch_finish() {
    orch_unpublish
    orch_unpublish_targets
    local reason="${2//\\/\\\\}"
    reason="${reason//\"/\\\"}"
    orch_mark finished "{\"exit_code\": $1, \"reason\": \"${reason//$'\n'/ }\", \"host\": \"$ORCH_HOST\"}"
}
orch_on_failure() { :; }
orch_fail() {
    orch_log "FAILED: $1"
    orch_on_failure "$1"
    trap - TERM INT
    orch_stop_children
    orch_finish "${2:-1}" "$1"
    exit "${2:-1}"
}
orch_teardown() {
    trap - TERM INT
    local reason="stopped by signal"
    # the time limit's warning (--signal) and scancel both send TERM: the clock tells them apart
    if [ -n "$ORCH_DEADLINE" ] && [ $((ORCH_DEADLINE - $(date +%s))) -le "$ORCH_LIMIT_WINDOW" ]; then
        reason="TIMEOUT: time limit reached"
    fi
    orch_log "stop requested ($reason): stopping what this job started"
    orch_stop_children
    orch_finish 143 "$reason"
    exit 143
}
trap orch_teardown TERM INT"""


def preamble(job):
    """Variables, run directory, helper functions and the teardown trap."""
    lines = list(banner("orch: run directory, helpers, teardown"))
    lines.append(assignment("ORCH_JOB", job.job_name))
    lines.append(assignment("ORCH_RUN_DIR", job.run_dir))
    lines.append(assignment("ORCH_ENDPOINTS_DIR", job.endpoints_dir))
    # relative paths are relative to the directory sbatch was called from, as for --output
    lines.append('case "$ORCH_RUN_DIR" in /*) ;; *) ORCH_RUN_DIR="${SLURM_SUBMIT_DIR:-$PWD}/$ORCH_RUN_DIR" ;; esac')
    lines.append('case "$ORCH_ENDPOINTS_DIR" in /*) ;; *) ORCH_ENDPOINTS_DIR="${SLURM_SUBMIT_DIR:-$PWD}/$ORCH_ENDPOINTS_DIR" ;; esac')
    if job.site.advertise_host:
        lines.append(assignment("ORCH_HOST", job.site.advertise_host))
    else:
        lines.append('ORCH_HOST="$(hostname)"')
    lines.append(assignment("ORCH_BIND", job.site.bind_address))
    # the address this node's own checks use to reach a service bound to ORCH_BIND
    lines.append('case "$ORCH_BIND" in 0.0.0.0|::) ORCH_LOCAL=127.0.0.1 ;; *) ORCH_LOCAL="$ORCH_BIND" ;; esac')
    lines.append("ORCH_STOP_WAIT=%d" % max(1, job.grace - 5))
    # SLURM may send the --signal warning up to a minute early
    lines.append("ORCH_LIMIT_WINDOW=%d" % (job.grace + 65))
    lines.append("ORCH_DEADLINE=")
    lines.append('if [ -n "${SLURM_JOB_ID:-}" ]; then')
    lines.append('    ORCH_DEADLINE=$(date -d "$(squeue -h -j "$SLURM_JOB_ID" -o %e 2>/dev/null)" +%s 2>/dev/null) || ORCH_DEADLINE=')
    lines.append("fi")
    # exported for the recipe's setup_script and anything else the job runs
    lines.append("export ORCH_JOB ORCH_RUN_DIR ORCH_ENDPOINTS_DIR ORCH_HOST ORCH_BIND ORCH_LOCAL")
    lines.append('mkdir -p "$ORCH_RUN_DIR/logs" "$ORCH_RUN_DIR/results" "$ORCH_RUN_DIR/metrics" "$ORCH_RUN_DIR/state" "$ORCH_ENDPOINTS_DIR"')
    lines.extend(PREAMBLE.split("\n"))
    if job.role == "service":
        lines.extend(failure_notice(job))
    lines.append('orch_mark started "{\\"job_id\\": \\"${SLURM_JOB_ID:-}\\", \\"host\\": \\"$ORCH_HOST\\"}"')
    lines.append('orch_log "%s %s starting on $ORCH_HOST"' % (job.role, job.kind))
    return tuple(lines)


def failure_notice(job):
    """A service that fails says so beside its endpoint files, so its clients stop waiting at once."""
    files = "%s %s" % (word(job.name + ".failed"), word(job.job_name + ".failed"))
    return (
        'rm -f "$ORCH_ENDPOINTS_DIR"/%s "$ORCH_ENDPOINTS_DIR"/%s' % (word(job.name + ".failed"), word(job.job_name + ".failed")),
        "orch_on_failure() {",
        "    for orch_file in %s; do" % files,
        '        printf \'%s\\n\' "$1" > "$ORCH_ENDPOINTS_DIR/.$orch_file.$$" && mv -f "$ORCH_ENDPOINTS_DIR/.$orch_file.$$" "$ORCH_ENDPOINTS_DIR/$orch_file"',
        "    done",
        "}",
    )


def modules(job):
    """The site's ``module`` lines: what the Apptainer runtime needs (nothing on the host runtime)."""
    if job.runtime != "apptainer" or not job.site.modules and not job.site.purge_modules:
        return ()
    lines = list(banner("modules"))
    if job.site.purge_modules:
        lines.append("module purge")
    lines.extend(shell_line("module", "load", name) for name in job.site.modules)
    return tuple(lines)


def environment(job, extra=()):
    """The recipe's environment, exported to what runs inside the runtime.

    ``extra`` pairs come first so that the recipe's own values win.
    """
    pairs = tuple(extra) + tuple(job.environment)
    if not pairs:
        return ()
    export = runtime_of(job).export
    return banner("environment") + tuple(export(name, value) for name, value in pairs)


@curry
def environment_with(defaults, job):
    """``environment`` with the kind's defaults: ``defaults(job)`` gives (name, value) pairs."""
    set_by_recipe = {name for name, _ in job.environment}
    return environment(job, tuple((n, v) for n, v in defaults(job) if n not in set_by_recipe))


@curry
def image(docker_source, job):
    """Lines that make sure the container image is there (nothing for the host runtime)."""
    lines = runtime_of(job).image(job, docker_source)
    return banner("container image") + tuple(lines) if lines else ()


def setup_script(job):
    """The recipe's own ``setup_script``, verbatim, in a subshell so it cannot end the job early."""
    if not job.setup_script:
        return ()
    lines = list(banner("setup_script (from the recipe, verbatim)"))
    lines.extend(heredoc(Raw('"$ORCH_RUN_DIR/state/setup.sh"'), job.setup_script))
    # the recipe's environment is the script's too, whatever the runtime
    names = " ".join(name for name, _ in job.environment)
    run = 'bash "$ORCH_RUN_DIR/state/setup.sh"'
    if names:
        run = "(export %s; %s)" % (names, run)
    lines.append('%s || orch_fail "setup_script exited with status $?" 1' % run)
    return tuple(lines)


def _background(words, pid_var):
    # setsid gives the child its own process group, so teardown reaches its children too
    return (
        shell_line("setsid", *words) + " &",
        "%s=$!" % pid_var,
        'orch_pids+=("$%s")' % pid_var,
    )


@curry
def start(command, job):
    """Start the service in the background: ``command(job)`` gives its words."""
    words = runtime_of(job).wrap(job, command(job))
    lines = list(banner("start %s" % job.kind))
    lines.append(shell_line("orch_log", "starting:", *words))
    lines.extend(_background(words, "ORCH_SERVICE_PID"))
    return tuple(lines)


def cadvisor_words(job):
    return (
        "cadvisor",
        "--port=%d" % job.cadvisor_port,
        Raw('--listen_ip="$ORCH_BIND"'),
        "--docker_only=false",
        "--housekeeping_interval=10s",
        "--store_container_labels=false",
    )


TARGET_FORMAT = (
    '[{"targets": ["%%s:%%s"], "labels": {"job": "%%s", "orch_run": "%s", "orch_name": "%s", '
    '"orch_role": "%s", "orch_slurm_job": "%%s"}}]\\n'
)


def scrape_targets(job):
    """``orch_publish_target EXPORTER PORT``: a file_sd file in the endpoints directory, gone when the job ends.

    Prometheus watches ``*.targets.json`` there, so what a job starts is
    scraped without anyone naming it; the labels say which run, member and
    SLURM job the numbers belong to. Every value is a validated name or a
    number, so the JSON needs no escaping.
    """
    labels = TARGET_FORMAT % (job.experiment or job.id, job.name, job.role)
    return banner("scrape targets") + (
        "orch_targets=()",
        "orch_publish_target() {",
        # the temporary name does not end in .targets.json: Prometheus never reads half a file
        '    local file="$ORCH_ENDPOINTS_DIR/$ORCH_JOB-${SLURM_JOB_ID:-$$}-$1.targets.json"',
        "    %s > \"$file.$$\" && mv -f \"$file.$$\" \"$file\" && orch_targets+=(\"$file\")"
        % shell_line("printf", labels, Raw('"$ORCH_HOST"'), Raw('"$2"'), Raw('"$1"'), Raw('"${SLURM_JOB_ID:-}"')),
        '    orch_log "scrape target $1 at $ORCH_HOST:$2 published"',
        "}",
        'orch_unpublish_targets() { if [ "${#orch_targets[@]}" -gt 0 ]; then rm -f "${orch_targets[@]}"; fi; }',
    )


NODE_EXPORTER_SOURCE = "docker://quay.io/prometheus/node-exporter:v1.8.2"


def node_exporter(job):
    """A node_exporter on a port the kernel picks (jobs may share a node), read back from its log and published.

    Its textfile collector serves ``*.prom`` files of the job: a client's
    ``orch_client_*`` gauges, so a dashboard can follow the benchmark's progress.
    """
    lines = list(banner("node_exporter sidecar"))
    lines.append('ORCH_EXPORTER_LOG="$ORCH_RUN_DIR/state/node_exporter-${SLURM_JOB_ID:-$$}.log"')
    # *.prom files dropped here are served too (a setup_script may add its own)
    lines.append('ORCH_TEXTFILE_DIR="$ORCH_RUN_DIR/state/textfile-${SLURM_JOB_ID:-$$}"')
    lines.append('mkdir -p "$ORCH_TEXTFILE_DIR"')
    lines.append("export ORCH_TEXTFILE_DIR")
    flags = [Raw('--web.listen-address="$ORCH_BIND":0'), Raw('--collector.textfile.directory="$ORCH_TEXTFILE_DIR"')]
    if job.runtime == "apptainer":
        lines.append(assignment("ORCH_NODE_EXPORTER_IMAGE", "%s/node-exporter.sif" % job.site.container_dir))
        lines.append(
            'if [ ! -f "$ORCH_NODE_EXPORTER_IMAGE" ]; then apptainer pull "$ORCH_NODE_EXPORTER_IMAGE" '
            + word(NODE_EXPORTER_SOURCE)
            + ' || orch_fail "apptainer pull of node_exporter failed" 1; fi'
        )
        words = ("apptainer", "exec", "--bind", Raw('"$ORCH_TEXTFILE_DIR"'), Raw('"$ORCH_NODE_EXPORTER_IMAGE"'), "node_exporter")
    else:
        # upstream calls it node_exporter, Debian prometheus-node-exporter
        lines.append("ORCH_NODE_EXPORTER=$(command -v node_exporter || command -v prometheus-node-exporter || echo node_exporter)")
        words = (Raw('"$ORCH_NODE_EXPORTER"'),)
    lines.append(shell_line("setsid", *(words + tuple(flags))) + ' 2> "$ORCH_EXPORTER_LOG" &')
    lines.extend(("ORCH_EXPORTER_PID=$!", 'orch_pids+=("$ORCH_EXPORTER_PID")'))
    lines.extend(
        (
            "orch_exporter_port=",
            "for _ in $(seq 50); do",
            """    orch_exporter_port=$(sed -n 's/.*Listening on.*address=[^ ]*:\\([0-9][0-9]*\\).*/\\1/p' "$ORCH_EXPORTER_LOG" | head -n 1)""",
            '    if [ -n "$orch_exporter_port" ] || ! kill -0 "$ORCH_EXPORTER_PID" 2>/dev/null; then break; fi',
            "    sleep 0.2",
            "done",
            'if [ -n "$orch_exporter_port" ]; then',
            '    orch_publish_target node_exporter "$orch_exporter_port"',
            "else",
            # monitoring is an observer: its failure is reported, not made the benchmark's failure
            '    orch_log "WARNING: node_exporter did not start (see $ORCH_EXPORTER_LOG): this job is not monitored"',
            "fi",
        )
    )
    if job.role == "client":
        lines.extend(CLIENT_PROGRESS.split("\n"))
    return tuple(lines)


CLIENT_PROGRESS = r"""orch_progress() {
    # $1: waiting, running or finished; $2: the exit status once finished
    local file="$ORCH_TEXTFILE_DIR/orch_client.prom" waiting=0 running=0
    case "$1" in waiting) waiting=1 ;; running) running=1 ;; esac
    {
        printf '# HELP orch_client_waiting 1 while the client waits for its service.\n# TYPE orch_client_waiting gauge\n'
        printf 'orch_client_waiting %d\n' "$waiting"
        printf '# HELP orch_client_running 1 while the client loads its service.\n# TYPE orch_client_running gauge\n'
        printf 'orch_client_running %d\n' "$running"
        printf '# HELP orch_client_started_timestamp_seconds When the client job started.\n# TYPE orch_client_started_timestamp_seconds gauge\n'
        printf 'orch_client_started_timestamp_seconds %d\n' "$ORCH_STARTED_AT"
        printf '# HELP orch_client_sweep_point The sweep point (array task) this job runs.\n# TYPE orch_client_sweep_point gauge\n'
        printf 'orch_client_sweep_point %d\n' "${SLURM_ARRAY_TASK_ID:-0}"
        if [ -n "${2:-}" ]; then
            printf '# HELP orch_client_exit_code The exit status of the client.\n# TYPE orch_client_exit_code gauge\n'
            printf 'orch_client_exit_code %d\n' "$2"
        fi
    } > "$file.$$" && mv -f "$file.$$" "$file"
}
ORCH_STARTED_AT=$(date +%s)"""


def progress(job, phase, status=None):
    """The line that records a client's phase for its exporter (none without one)."""
    if not (job.node_exporter and job.role == "client"):
        return ()
    return ("orch_progress %s%s" % (phase, " " + status if status else ""),)


def sidecars(job):
    """What runs beside the job: cAdvisor and node_exporter, each published as a scrape target."""
    if not (job.cadvisor or job.node_exporter):
        return ()
    lines = list(scrape_targets(job))
    if job.cadvisor:
        lines.extend(cadvisor(job))
    if job.node_exporter:
        lines.extend(node_exporter(job))
    return tuple(lines)


def cadvisor(job):
    """The cAdvisor sidecar on its fixed port."""
    if job.runtime == "apptainer":
        lines = [assignment("ORCH_CADVISOR_IMAGE", "%s/cadvisor.sif" % job.site.container_dir)]
        lines.append(
            'if [ ! -f "$ORCH_CADVISOR_IMAGE" ]; then apptainer pull "$ORCH_CADVISOR_IMAGE" '
            + word(CADVISOR_SOURCE)
            + ' || orch_fail "apptainer pull of cAdvisor failed" 1; fi'
        )
        words = ("apptainer", "exec", "--bind", "/sys,/proc,/var/run", Raw('"$ORCH_CADVISOR_IMAGE"')) + cadvisor_words(job)
    else:
        lines = []
        words = cadvisor_words(job)
    publish = ("orch_publish_target cadvisor %d" % job.cadvisor_port,)
    return banner("cAdvisor sidecar") + tuple(lines) + _background(words, "ORCH_CADVISOR_PID") + publish


CADVISOR_SOURCE = "docker://gcr.io/cadvisor/cadvisor:v0.49.1"


def http_probe(*urls, seconds=5):
    """Words that succeed when any of ``urls`` answers with a 2xx status within ``seconds``."""
    if len(urls) == 1:
        return ("curl", "-fsS", "-o", "/dev/null", "--max-time", str(seconds), urls[0])
    script = Literal('for u in "$@"; do curl -fsS -o /dev/null --max-time %d "$u" && exit 0; done; exit 1' % seconds)
    return ("bash", "-c", script, "orch-probe") + tuple(urls)


def tcp_probe(host, port, seconds):
    """Words that succeed when a TCP connection to host:port opens (the caller bounds the time)."""
    return ("bash", "-c", Literal('exec 3<>"/dev/tcp/$1/$2"'), "orch-probe", host, port)


def probe_seconds(job):
    """How long one readiness check may take: the interval, within 5..30 s (apptainer exec alone takes a second)."""
    return max(5, min(job.health.interval, 30))


@curry
def health(probe, job):
    """Poll ``probe(job)`` (a tuple of words run on this node) until it passes.

    Polled every ``interval`` seconds, and every 0.2 s during the first
    interval, so a quick service is not kept waiting; gives up once ``timeout``
    seconds have passed and ``retries`` checks at the interval have failed, and
    fails at once if the service process exits first.
    """
    check = job.health
    words = probe(job)
    lines = list(banner("readiness"))
    lines.append("orch_probe() { %s >/dev/null 2>&1; }" % shell_line("timeout", str(probe_seconds(job) + 1), *words))
    lines.extend(
        (
            "orch_started=$SECONDS",
            "orch_attempts=0",
            "until orch_probe; do",
            '    if ! kill -0 "$ORCH_SERVICE_PID" 2>/dev/null; then',
            '        wait "$ORCH_SERVICE_PID"; orch_status=$?',
            '        orch_fail "%s exited with status $orch_status before it was ready" "$(( orch_status == 0 ? 1 : orch_status ))"'
            % job.kind,
            "    fi",
            "    if [ $((SECONDS - orch_started)) -lt %d ]; then sleep 0.2; continue; fi" % check.interval,
            "    orch_attempts=$((orch_attempts + 1))",
            # SECONDS ticks in whole seconds: -gt, so the job never gives up before its timeout
            "    if [ \"$orch_attempts\" -ge %d ] && [ $((SECONDS - orch_started)) -gt %d ]; then"
            % (check.retries, check.timeout),
            '        orch_fail "%s not ready after $orch_attempts checks in $((SECONDS - orch_started)) s" 1' % job.kind,
            "    fi",
            "    sleep %d" % check.interval,
            "done",
            'orch_log "%s is ready after $((SECONDS - orch_started)) s"' % job.kind,
        )
    )
    return tuple(lines)


ENDPOINT_FORMAT = (
    '{"name": "%s", "kind": "%s", "orch_id": "%s", "job_id": "%s", "host": "%s", '
    '"port": %s, "metrics_port": %s, "run_dir": "%s"}'
)


@curry
def publish(port, job):
    """Write the endpoint file atomically, under the service's name and its job name.

    Every value in it is a validated name, a number or a path orch chose,
    so the JSON needs no escaping.
    """
    port_value = port(job)
    metrics_port = str(job.cadvisor_port) if job.cadvisor else "null"
    lines = list(banner("publish endpoint"))
    lines.append(
        "orch_endpoint=$(%s)"
        % shell_line(
            "printf", ENDPOINT_FORMAT, job.name, job.kind, job.id, Raw('"${SLURM_JOB_ID:-}"'),
            Raw('"$ORCH_HOST"'), str(port_value), metrics_port, Raw('"$ORCH_RUN_DIR"'),
        )
    )
    files = "%s %s" % (word(job.name + ".json"), word(job.job_name + ".json"))
    lines.extend(
        (
            # once this job ends, its endpoint files go (unless a newer service has replaced them)
            "orch_unpublish() {",
            "    for orch_file in %s; do" % files,
            '        if grep -qs %s "$ORCH_ENDPOINTS_DIR/$orch_file"; then rm -f "$ORCH_ENDPOINTS_DIR/$orch_file"; fi'
            % word('"orch_id": "%s"' % job.id),
            "    done",
            "}",
            "for orch_file in %s; do" % files,
            '    printf \'%s\\n\' "$orch_endpoint" > "$ORCH_ENDPOINTS_DIR/.$orch_file.$$" '
            '&& mv -f "$ORCH_ENDPOINTS_DIR/.$orch_file.$$" "$ORCH_ENDPOINTS_DIR/$orch_file"',
            "done",
            'orch_mark ready "$orch_endpoint"',
            'orch_log "endpoint $ORCH_HOST:%d published"' % port_value,
        )
    )
    return tuple(lines)


def wait_service(job):
    """Wait for the service; its exit status ends the job."""
    return banner("wait") + (
        'wait "$ORCH_SERVICE_PID"',
        "orch_status=$?",
        "trap - TERM INT",
        "orch_stop_children",
        'if [ "$orch_status" -ne 0 ]; then orch_fail "%s exited with status $orch_status" "$orch_status"; fi' % job.kind,
        'orch_finish 0 "%s exited"' % job.kind,
        "exit 0",
    )


def service_sections(command, probe, port, docker_source, setup=(), ready=(), env=None):
    """The standard list of sections of a service kind.

    + command: ``job -> words`` that run the service
    + probe: ``job -> words`` that succeed once it is ready
    + port: ``job -> int``, the port clients are told
    + docker_source: the image to pull when the recipe names none
    + setup: sections run before the start (config files, data directories)
    + ready: sections run after the readiness check, before the endpoint is published
    + env: ``job -> pairs`` of default environment variables
    """
    return (
        (header, preamble, modules, environment_with(env) if env else environment, image(docker_source))
        + tuple(setup)
        + (setup_script, start(command), sidecars, health(probe))
        + tuple(ready)
        + (publish(port), wait_service)
    )


# ---------------------------------------------------------------- clients


def target_probe(job):
    """Words that succeed when the target answers: one of its health URLs, else a TCP connect."""
    if job.target.health_paths:
        return http_probe(*(Raw('"$TARGET_URL"' + word(path)) for path in job.target.health_paths))
    return tcp_probe(Raw('"$TARGET_HOST"'), Raw('"$TARGET_PORT"'), 5)


def endpoint_reads(path, host="orch_host", port="orch_port"):
    """Lines that read an endpoint file's host (and port, unless ``port`` is None) into shell variables.

    + path: the file, as a shell word
    They are empty when the file is not there. The host goes on into URLs and
    sed replacements: anything but a host name or address is dropped.
    """
    reads = ("""%s=$(sed -n 's/.*"host": "\\([^"]*\\)".*/\\1/p' %s 2>/dev/null)""" % (host, path),)
    if port:
        reads += ("""%s=$(sed -n 's/.*"port": \\([0-9]*\\).*/\\1/p' %s 2>/dev/null)""" % (port, path),)
    return reads + ('case "$%s" in *[!A-Za-z0-9._-]*) %s= ;; esac' % (host, host),)


def await_endpoint(service, seconds, port="orch_port"):
    """Lines that wait (bounded, 1 s polls) for ``<service>.json`` in the endpoints directory, then read it.

    They leave ``orch_host`` and ``port`` (a variable name, or None) empty when the file never came,
    or when the service failed first (its ``.failed`` file).
    """
    return (
        'orch_file="$ORCH_ENDPOINTS_DIR"/%s' % word(service + ".json"),
        "orch_waited_from=$SECONDS",
        'until [ -s "$orch_file" ] || [ -e "${orch_file%%.json}.failed" ] || [ $((SECONDS - orch_waited_from)) -ge %d ]; do sleep 1; done'
        % seconds,
    ) + endpoint_reads('"$orch_file"', port=port)


# a service that is about to be ready is not kept waiting; a slow one is not polled hard
POLL_PAUSE = "    if [ $((SECONDS - orch_started)) -lt 10 ]; then sleep 0.2; else sleep 2; fi"


def wait_for_target(job):
    """Find the target (its endpoint file, or the recipe's URL) and wait, bounded, until it answers."""
    target = job.target
    lines = list(banner("target"))
    lines.extend(progress(job, "waiting"))
    lines.append("ORCH_WAIT=%d" % target.wait)
    lines.append("orch_started=$SECONDS")
    if target.host:
        lines.append(assignment("TARGET_HOST", target.host))
        lines.append(assignment("TARGET_PORT", str(target.port)))
    else:
        lines.extend(
            (
                'ORCH_TARGET_FILE="$ORCH_ENDPOINTS_DIR"/%s' % word(target.name + ".json"),
                # the service leaves <name>.failed when it fails: stop waiting then, with its reason
                "orch_target_failed() {",
                '    if [ -e "${ORCH_TARGET_FILE%.json}.failed" ]; then',
                '        orch_fail "service %s failed: $(cat "${ORCH_TARGET_FILE%%.json}.failed" 2>/dev/null)" 1' % target.name,
                "    fi",
                "}",
                'until [ -s "$ORCH_TARGET_FILE" ]; do',
                "    orch_target_failed",
                '    if [ $((SECONDS - orch_started)) -ge "$ORCH_WAIT" ]; then',
                '        orch_fail "no endpoint for service %s after $ORCH_WAIT s ($ORCH_TARGET_FILE)" 1' % target.name,
                "    fi",
                POLL_PAUSE,
                "done",
            )
            + endpoint_reads('"$ORCH_TARGET_FILE"', "TARGET_HOST", "TARGET_PORT")
        )
    lines.append(assignment("TARGET_SCHEME", target.scheme))
    lines.append('TARGET_URL="$TARGET_SCHEME://$TARGET_HOST:$TARGET_PORT"')
    lines.append("orch_probe() { %s >/dev/null 2>&1; }" % shell_line("timeout", "12", *target_probe(job)))
    watch = () if target.host else ("    orch_target_failed",)
    lines.extend(
        ("until orch_probe; do",)
        + watch
        + (
            '    if [ $((SECONDS - orch_started)) -ge "$ORCH_WAIT" ]; then',
            '        orch_fail "target $TARGET_HOST:$TARGET_PORT not answering after $ORCH_WAIT s" 1',
            "    fi",
            POLL_PAUSE,
            "done",
            'orch_log "target $TARGET_HOST:$TARGET_PORT is up"',
        )
    )
    # exported on the node (the runtime passes them on): recipes' args may say ${TARGET_SERVICE_HOST}, as the seed's do
    lines.append('export TARGET_HOST TARGET_PORT TARGET_SCHEME TARGET_URL TARGET_SERVICE_HOST="$TARGET_HOST"')
    return tuple(lines)


def parameter_exports(values):
    """``export ORCH_PARAM_<NAME>=value ...`` for one combination (a recipe's own command reads them).

    Passwords are left out: they never appear in a script's text.
    """
    pairs = sorted((name, value) for name, value in values.items() if name != "password")
    if not pairs:
        return ":"
    def text(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

    return "export " + " ".join("ORCH_PARAM_%s=%s" % (name.upper(), word(text(value))) for name, value in pairs)


def sweep_cases(arguments, job):
    """``orch_args`` (none for a recipe's own command) and ``ORCH_PARAM_*`` for this array task: a ``case`` arm per combination."""
    from orch.sweep import combinations

    combos = combinations(job)
    lines = ['case "${SLURM_ARRAY_TASK_ID:-0}" in']
    for index, values in enumerate(combos):
        words = "" if job.command else "orch_args=(%s); " % shell_line(*arguments(job, values))
        lines.append("    %d) %s%s ;;" % (index, words, parameter_exports(values)))
    lines.append('    *) orch_fail "no sweep point for array task ${SLURM_ARRAY_TASK_ID:-}" 2 ;;')
    lines.append("esac")
    return tuple(lines)


@curry
def benchmark(program, arguments, job):
    """Run the load generator and wait for it; its exit status ends the job.

    + program: ``job -> words`` before the per-combination arguments
    + arguments: ``(job, values) -> words`` for one combination of parameters
    The recipe's own ``command``/``args``, when given, run instead.
    """
    lines = list(banner("benchmark"))
    # exported: a recipe's own command can write its results there too
    lines.append('export ORCH_RESULT="$ORCH_RUN_DIR/results/${ORCH_JOB}-${SLURM_ARRAY_TASK_ID:-0}-${SLURM_JOB_ID:-$$}.json"')
    lines.extend(sweep_cases(arguments, job))
    if job.command:
        # the recipe's own program: it reads this task's parameters from ORCH_PARAM_* (and ORCH_RESULT)
        words = (job.command,) + (job.args or ())
    else:
        words = tuple(program(job)) + (Raw('"${orch_args[@]}"'), "--output", Raw('"$ORCH_RESULT"'))
    words = runtime_of(job).wrap(job, words)
    lines.append(shell_line("orch_log", "running:", *words))
    lines.extend(progress(job, "running"))
    lines.extend(_background(words, "ORCH_CLIENT_PID"))
    lines.extend(('wait "$ORCH_CLIENT_PID"', "orch_status=$?") + progress(job, "finished", '"$orch_status"'))
    lines.extend(
        (
            "trap - TERM INT",
            "orch_stop_children",
            'if [ "$orch_status" -ne 0 ]; then orch_fail "%s exited with status $orch_status" "$orch_status"; fi' % job.kind,
            'orch_finish 0 "%s finished"' % job.kind,
            "exit 0",
        )
    )
    return tuple(lines)


def client_sections(program, arguments, docker_source):
    """The standard list of sections of a client kind (see ``benchmark``)."""
    return (
        header,
        preamble,
        modules,
        environment,
        image(docker_source),
        setup_script,
        sidecars,
        wait_for_target,
        benchmark(program, arguments),
    )
