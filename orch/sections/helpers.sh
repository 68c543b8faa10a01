# orch's fixed shell helpers: every job script carries the blocks it needs, verbatim.
# orch.sections.shell reads this file: the lines above the first "#@" line (this header) stay
# out of the scripts, and each "#@ NAME" line starts the block called NAME.
# Checked on its own by shellcheck (tests/test_sections.py); the variables come from the preamble.
# shellcheck shell=bash disable=SC2154

#@ write
orch_write() {
    # orch_write FILE COMMAND...: COMMAND's output becomes FILE whole, or FILE stays as it was.
    # Readers (clients, Prometheus, orch status) see the old file or the new one, never half of one;
    # the temporary name starts with a dot, so no glob of theirs (*.json, *.targets.json) takes it.
    local dir=. tmp
    case "$1" in */*) dir="${1%/*}" ;; esac
    tmp="$dir/.${1##*/}.$$"
    if "${@:2}" > "$tmp" && mv -f "$tmp" "$1"; then return 0; fi
    rm -f "$tmp"
    return 1
}

#@ preamble
set -o pipefail
orch_log() { printf '%s orch[%s]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ORCH_JOB" "$*" >&2; }
# orch_mark NAME TEXT: a state marker (started, ready, finished) in the run directory
orch_mark() { orch_write "$ORCH_RUN_DIR/state/$1" printf '%s\n' "$2"; }
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
trap orch_teardown TERM INT

#@ client_progress
orch_progress() {
    # $1: waiting, running or finished; $2: the exit status once finished
    orch_write "$ORCH_TEXTFILE_DIR/orch_client.prom" orch_progress_gauges "$@"
}
orch_progress_gauges() {
    local waiting=0 running=0
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
    }
}
ORCH_STARTED_AT=$(date +%s)
