"""A client's job: find its target (endpoint file or URL), wait until it answers, run the load for this sweep point."""
from toolz import curry

import posixpath

from orch.quoting import VARIABLE, Raw, assignment, literal, shell_line, word
from orch.runtimes import runtime_of
from orch.sections.environment import in_environment, recipe_word, with_environment
from orch.sections.lines import background, banner
from orch.sections.monitoring import progress
from orch.sections.probes import http_probe, probe_function, tcp_probe
from orch.sweep import combinations

__all__ = ("wait_for_target", "endpoint_reads", "await_endpoint", "target_probe", "parameter_exports", "sweep_cases", "benchmark",
           "result_copies")


def target_probe(job):
    """Words that succeed when the target answers: one of its health URLs, else a TCP connect."""
    if job.target.health_paths:
        return http_probe(*(Raw('"$TARGET_URL"' + word(path)) for path in job.target.health_paths))
    return tcp_probe(Raw('"$TARGET_HOST"'), Raw('"$TARGET_PORT"'))


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
        # SECONDS ticks in whole seconds: -gt, so the wait never ends before its bound
        'until [ -s "$orch_file" ] || [ -e "${orch_file%%.json}.failed" ] || [ $((SECONDS - orch_waited_from)) -gt %d ]; do sleep 1; done'
        % seconds,
    ) + endpoint_reads('"$orch_file"', port=port)


def stated_port_check(target):
    """Lines that fail the job when the service publishes a port other than the one its recipe states.

    Only for the service the recipe names: a client aimed at a given service job (an
    experiment's, ``orch submit --target``) loads wherever that job published.
    """
    if target.stated_port is None or target.stated_for != target.name:
        return ()
    return (
        'if [ "$TARGET_PORT" != %d ]; then' % target.stated_port,
        '    orch_fail "service %s publishes port $TARGET_PORT, not target_service.port %d" 1' % (target.name, target.stated_port),
        "fi",
    )


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
                '    if [ $((SECONDS - orch_started)) -gt "$ORCH_WAIT" ]; then',
                '        orch_fail "no endpoint for service %s after $ORCH_WAIT s ($ORCH_TARGET_FILE)" 1' % target.name,
                "    fi",
                POLL_PAUSE,
                "done",
            )
            + endpoint_reads('"$ORCH_TARGET_FILE"', "TARGET_HOST", "TARGET_PORT")
            + stated_port_check(target)
        )
    lines.append(assignment("TARGET_SCHEME", target.scheme))
    # a URL's base, path and all; else the published host and port
    lines.append(assignment("TARGET_URL", target.url) if target.url else 'TARGET_URL="$TARGET_SCHEME://$TARGET_HOST:$TARGET_PORT"')
    # each check its own bound: curl's --max-time 5, and a second for the process around it
    lines.append(probe_function(target_probe(job), 6))
    watch = () if target.host else ("    orch_target_failed",)
    lines.extend(
        ("until orch_probe; do",)
        + watch
        + (
            '    if [ $((SECONDS - orch_started)) -gt "$ORCH_WAIT" ]; then',
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
    combos = combinations(job)
    lines = ['case "${SLURM_ARRAY_TASK_ID:-0}" in']
    for index, values in enumerate(combos):
        words = "" if job.command else "orch_args=(%s); " % shell_line(*arguments(job, values))
        lines.append("    %d) %s%s ;;" % (index, words, parameter_exports(values)))
    lines.append('    *) orch_fail "no sweep point for array task ${SLURM_ARRAY_TASK_ID:-}" 2 ;;')
    lines.append("esac")
    return tuple(lines)


COPY = ('orch_copy=%s; if [ ! -s "$ORCH_RESULT" ]; then orch_log "no results document to copy to $orch_copy"; '
        'elif mkdir -p -- "$(dirname -- "$orch_copy")" && cp -- "$ORCH_RESULT" "$orch_copy"; '
        'then orch_log "results copied to $orch_copy"; else orch_log "could not copy the results to $orch_copy"; fi')


def result_copies(job):
    """Lines that copy this task's results document where the recipe asks for it, once the load has ended.

    The files (``output_file``, ``output.file``) get the task's number before their extension in a
    sweep, so that points do not overwrite each other; the directory (``output.shared_dir``) gets the
    document under its own name, which is the task's. A path that names a variable not set on the
    node (``$SCRATCH`` elsewhere than MeluXina) is left alone, saying so: it would otherwise land at ``/``.
    A copy that fails is logged; the job's status stays the load's (the document is in results/ still).
    """
    task = '-"${SLURM_ARRAY_TASK_ID:-0}"'
    sweep = len(combinations(job)) > 1
    destinations = []
    for path in job.result_files:
        stem, extension = posixpath.splitext(path) if sweep else (path, "")
        destinations.append((path, word(stem) + (task + (word(extension) if extension else "") if sweep else "")))
    if job.result_dir:
        destinations.append((job.result_dir, word(job.result_dir) + '/"${ORCH_RESULT##*/}"'))
    lines = list(banner("copies of the results document")) if destinations else []
    for given, destination in destinations:
        names = [braced or bare for braced, bare in VARIABLE.findall(given)]
        copy = COPY % destination
        if names:
            unset = " || ".join('[ -z "${%s-}" ]' % name for name in names)
            said = literal("not copied to %s: %s not set here" % (given, " or ".join(names)))
            copy = "if %s; then orch_log %s; else %s; fi" % (unset, said, copy)
        lines.append(copy)
    return tuple(lines)


@curry
def driver_check(module, job):
    """Lines that make sure the load generator's Python can run ``module`` on this node, and fail at once, saying why, if not.

    orch's own load generators run on the node, outside any image, with the Python the
    job was submitted from (or the site's): a node without orch there would otherwise
    fail minutes later with a bare ``exited with status 1``.
    """
    lines = list(banner("load generator"))
    lines.append(assignment("ORCH_PYTHON", job.driver_python))
    lines.extend(shell_line("module", "load", name) for name in job.site.python_modules)
    check = shell_line(Raw('"$ORCH_PYTHON"'), "-c", "import " + module)
    lines.extend((
        "if ! orch_driver_check=$(%s 2>&1 </dev/null); then" % check,
        "    orch_fail \"the load generator cannot start: $ORCH_PYTHON on $ORCH_HOST cannot import %s "
        "(${orch_driver_check##*$'\\n'})\" 1"
        % module,
        "fi",
    ))
    return tuple(lines)


@curry
def benchmark(program, arguments, job, output=("--output",), driver=False, tool_image=False):
    """Run the load generator and wait for it; its exit status ends the job.

    + program: ``job -> words`` before the per-combination arguments
    + arguments: ``(job, values) -> words`` for one combination of parameters
    + output: the words before the results file (``ORCH_RESULT``); None for a tool that takes none
      (a native tool run as it is: it may read ``ORCH_RESULT`` from its environment)
    + driver: ``program`` is orch's own load generator: it runs on the node as it is, and when
      ``tool_image`` it gets the runtime's words after ``--`` to run its native tool in the image
    The recipe's own ``command``/``args``, when given, run instead (in the image).
    """
    lines = list(banner("benchmark"))
    # exported: a recipe's own command can write its results there too
    lines.append('export ORCH_RESULT="$ORCH_RUN_DIR/results/${ORCH_JOB}-${SLURM_ARRAY_TASK_ID:-0}-${SLURM_JOB_ID:-$$}.json"')
    lines.extend(sweep_cases(arguments, job))
    wrap = runtime_of(job).wrap
    if job.command:
        # the recipe's own program: it reads this task's parameters from ORCH_PARAM_* (and ORCH_RESULT)
        words = tuple(recipe_word(job, w) for w in (job.command,) + (job.args or ()))
        shown, run = wrap(job, words), in_environment(job, words)
    else:
        words = tuple(program(job)) + (Raw('"${orch_args[@]}"'),)
        if output is not None:
            words += tuple(output) + (Raw('"$ORCH_RESULT"'),)
        if not driver:
            shown, run = wrap(job, words), in_environment(job, words)
        else:
            if tool_image and wrap(job, ()):
                # the native tool runs in the image: the driver puts these words before it (it passes
                # the job's environment on, as it has it)
                words += ("--",) + tuple(wrap(job, ()))
            # orch's own load generator, on the node: the job's environment is its too
            shown, run = words, with_environment(words)
    lines.append(shell_line("orch_log", "running:", *shown))
    lines.extend(progress(job, "running"))
    lines.extend(background(run, "ORCH_CLIENT_PID"))
    lines.extend(('wait "$ORCH_CLIENT_PID"', "orch_status=$?") + progress(job, "finished", '"$orch_status"'))
    lines.extend(result_copies(job))
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
