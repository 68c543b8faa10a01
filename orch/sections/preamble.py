"""The preamble: the run's variables and directories, orch's helpers, the teardown trap, the ``started`` marker."""
from orch.quoting import assignment, literal, word
from orch.sections.lines import banner
from orch.sections.shell import helper_lines

__all__ = ("preamble", "failure_notice")


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
    # how a command runs in the job's environment: as it is, until the environment section says otherwise
    lines.append("ORCH_IN_ENV='exec \"$@\"'")
    # exported for the recipe's setup_script and anything else the job runs
    lines.append("export ORCH_JOB ORCH_RUN_DIR ORCH_ENDPOINTS_DIR ORCH_HOST ORCH_BIND ORCH_LOCAL")
    lines.append('mkdir -p "$ORCH_RUN_DIR/logs" "$ORCH_RUN_DIR/results" "$ORCH_RUN_DIR/metrics" "$ORCH_RUN_DIR/state" "$ORCH_ENDPOINTS_DIR"')
    lines.extend(helper_lines("write") + helper_lines("preamble"))
    if job.role == "service":
        lines.extend(failure_notice(job))
    lines.append('orch_mark started "{\\"job_id\\": \\"${SLURM_JOB_ID:-}\\", \\"host\\": \\"$ORCH_HOST\\"}"')
    lines.append('orch_log "%s %s starting on $ORCH_HOST"' % (job.role, job.kind))
    if job.description:
        # the recipe's own words about the job (descriptive only): in its log, on one line, nothing expanded
        lines.append("orch_log %s" % literal("description: " + " ".join(job.description.split())))
    return tuple(lines)


def failure_notice(job):
    """A service that fails says so beside its endpoint files, so its clients stop waiting at once."""
    files = "%s %s" % (word(job.name + ".failed"), word(job.job_name + ".failed"))
    return (
        'rm -f "$ORCH_ENDPOINTS_DIR"/%s "$ORCH_ENDPOINTS_DIR"/%s' % (word(job.name + ".failed"), word(job.job_name + ".failed")),
        "orch_on_failure() {",
        "    for orch_file in %s; do" % files,
        '        orch_write "$ORCH_ENDPOINTS_DIR/$orch_file" printf \'%s\\n\' "$1"',
        "    done",
        "}",
    )
