"""A service's life in its job: start it, wait until it is ready, publish its endpoint, wait for it to end."""
from toolz import curry

from orch.quoting import Raw, shell_line, word
from orch.runtimes import runtime_of
from orch.sections.environment import in_environment
from orch.sections.lines import background, banner
from orch.sections.probes import probe_function

__all__ = ("service_port", "start", "probe_seconds", "health", "publish", "wait_service", "ENDPOINT_FORMAT")


def service_port(job, default=None):
    """The service's port: the recipe's first ``ports`` entry, else the kind's default."""
    return job.ports[0] if job.ports else default


@curry
def start(command, job):
    """Start the service in the background, in the job's environment: ``command(job)`` gives its words."""
    words = command(job)
    lines = list(banner("start %s" % job.kind))
    lines.append(shell_line("orch_log", "starting:", *runtime_of(job).wrap(job, words)))
    lines.extend(background(in_environment(job, words), "ORCH_SERVICE_PID"))
    return tuple(lines)


def probe_seconds(job):
    """How long one readiness check may take: the interval, within 5..30 s (apptainer exec alone takes a second)."""
    return max(5, min(job.health.interval, 30))


@curry
def health(probe, job):
    """Poll ``probe(job)`` (words run on this node, or ``any_of`` several) until it passes.

    Polled every 0.2 s during the first ``interval``, so a quick service is not
    kept waiting, then every ``interval`` seconds. The job gives up at whichever
    limit comes first: ``retries`` failed checks at the interval, or ``timeout``
    seconds; and at once if the service process exits. Bash's ``SECONDS`` ticks
    in whole seconds, so every comparison errs late: never before a limit, and
    about a second (plus the check under way) after it.
    """
    check = job.health
    lines = list(banner("readiness"))
    lines.append(probe_function(probe(job), probe_seconds(job) + 1))
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
            "    orch_waited=$((SECONDS - orch_started))",
            "    if [ \"$orch_waited\" -gt %d ]; then" % check.timeout,
            '        orch_fail "%s not ready in $orch_waited s (health_check.timeout: %d s; $orch_attempts checks at the interval)" 1'
            % (job.kind, check.timeout),
            "    fi",
            # -le: the first counted check comes more than one interval in
            "    if [ \"$orch_waited\" -le %d ]; then sleep 0.2; continue; fi" % check.interval,
            "    orch_attempts=$((orch_attempts + 1))",
            "    if [ \"$orch_attempts\" -ge %d ]; then" % check.retries,
            '        orch_fail "%s not ready after $orch_attempts checks in $orch_waited s (health_check.retries: %d)" 1'
            % (job.kind, check.retries),
            "    fi",
            # the last pause ends just past the timeout: one more check, then the job gives up
            "    orch_pause=$((%d + 1 - orch_waited))" % check.timeout,
            "    sleep $((orch_pause < %d ? orch_pause : %d))" % (check.interval, check.interval),
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
            '    orch_write "$ORCH_ENDPOINTS_DIR/$orch_file" printf \'%s\\n\' "$orch_endpoint"',
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
