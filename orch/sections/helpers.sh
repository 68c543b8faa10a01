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

#@ placer
# A placement job (orch.sections.placer): once the services it names run, it keeps one held member of
# the experiment off their nodes (apart_from) or on the first one's (together_with), and releases it;
# when a service ended first, or SLURM says no, it cancels the member: nothing stays held.
orch_placement_log() { printf '%s orch placement of %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$orch_member_name" "$*" >&2; }
# orch_placed RELEASED NODES REASON: what was done, in the member's state/placement, for orch status
orch_placed() {
    local reason="${3//\\/\\\\}"
    reason="${reason//\"/\\\"}"
    mkdir -p "${orch_marker%/*}"
    orch_write "$orch_marker" printf '{"released": %s, "rule": "%s", "with": "%s", "nodes": "%s", "reason": "%s", "placement_job": "%s"}\n' \
        "$1" "$orch_rule" "${orch_anchor_names[*]}" "$2" "${reason//$'\n'/ }" "${SLURM_JOB_ID:-}"
}
orch_give_up() {
    trap - TERM INT
    orch_placement_log "not placed: $1; cancelling job $orch_member"
    orch_placed false "" "not placed: $1"
    scancel "$orch_member" 2>/dev/null
    exit 1
}
# orch_view JOB: "STATE|NODES|BATCH HOST" of a job, as squeue says it; asked again for a minute when squeue fails
orch_view() {
    local view tries=0
    until view=$(squeue --noheader --states=all --jobs="$1" --format='%T|%N|%B' 2>/dev/null) && [ -n "$view" ]; do
        tries=$((tries + 1))
        if [ "$tries" -ge 12 ]; then return 1; fi
        sleep 5
    done
    printf '%s\n' "${view%%$'\n'*}"
}
orch_place() {
    trap 'orch_give_up "its placement job was stopped before it could place it"' TERM INT
    local i view state nodes host all_nodes="" first_host="" update out
    view=$(orch_view "$orch_member") || orch_give_up "SLURM does not know job $orch_member"
    IFS='|' read -r state nodes host <<< "$view"
    if [ "$state" != PENDING ]; then
        # stopped (orch stop, scancel) or released by hand: nothing left to place
        orch_placement_log "job $orch_member is $state: nothing to place"
        exit 0
    fi
    for i in "${!orch_anchor_jobs[@]}"; do
        while :; do
            view=$(orch_view "${orch_anchor_jobs[$i]}") || orch_give_up "SLURM does not know ${orch_anchor_names[$i]} (job ${orch_anchor_jobs[$i]})"
            IFS='|' read -r state nodes host <<< "$view"
            case "$state" in
                RUNNING | CONFIGURING | SUSPENDED | STOPPED | SIGNALING | RESIZING) break ;;
                # it began and was put back in the queue (a node failed): it runs again, somewhere else
                PENDING | REQUEUED | REQUEUE_HOLD | REQUEUE_FED) sleep 5 & wait $! ;;
                *) orch_give_up "${orch_anchor_names[$i]} (job ${orch_anchor_jobs[$i]}) ended ($state) before $orch_member_name could be placed ${orch_rule/_/ } it" ;;
            esac
        done
        all_nodes+="${all_nodes:+,}$nodes"
        if [ -z "$first_host" ]; then first_host="$host"; fi
    done
    if [ "$orch_rule" = apart_from ]; then
        update="ExcNodeList=${orch_own_exclude:+$orch_own_exclude,}$all_nodes"
    else
        all_nodes="$first_host"
        update="ReqNodeList=$first_host"
    fi
    out=$(scontrol update JobId="$orch_member" "$update" 2>&1) || orch_give_up "scontrol update $update was refused: $out"
    out=$(scontrol release "$orch_member" 2>&1) || orch_give_up "scontrol release was refused: $out"
    orch_placed true "$all_nodes" ""
    orch_placement_log "job $orch_member placed ${orch_rule/_/ } ${orch_anchor_names[*]} ($update) and released"
}
