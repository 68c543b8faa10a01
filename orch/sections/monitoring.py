"""What watches a job: cAdvisor and node_exporter beside it, each published as a Prometheus scrape target; a client's progress gauges."""
from orch.quoting import Raw, assignment, shell_line, word
from orch.runtimes import runtime_of
from orch.sections.lines import background, banner
from orch.sections.shell import helper_lines

__all__ = ("sidecars", "scrape_targets", "node_exporter", "cadvisor", "progress", "NODE_EXPORTER_SOURCE", "CADVISOR_SOURCE",
           "NODE_EXPORTER_IMAGE", "CADVISOR_IMAGE")


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
        '    local file="$ORCH_ENDPOINTS_DIR/$ORCH_JOB-${SLURM_JOB_ID:-$$}-$1.targets.json"',
        "    orch_write \"$file\" %s && orch_targets+=(\"$file\")"
        % shell_line("printf", labels, Raw('"$ORCH_HOST"'), Raw('"$2"'), Raw('"$1"'), Raw('"${SLURM_JOB_ID:-}"')),
        '    orch_log "scrape target $1 at $ORCH_HOST:$2 published"',
        "}",
        'orch_unpublish_targets() { if [ "${#orch_targets[@]}" -gt 0 ]; then rm -f "${orch_targets[@]}"; fi; }',
    )


NODE_EXPORTER_SOURCE = "docker://quay.io/prometheus/node-exporter:v1.8.2"
# a sidecar's image: its variable, and its file name under apptainer
NODE_EXPORTER_IMAGE = ("ORCH_NODE_EXPORTER_IMAGE", "node-exporter.sif")


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
    if job.runtime != "host":
        runtime = runtime_of(job)
        lines.extend(runtime.image(job, NODE_EXPORTER_SOURCE, sidecar=NODE_EXPORTER_IMAGE))
        words = runtime.wrap(job, ("node_exporter",), Raw('"$ORCH_NODE_EXPORTER_IMAGE"'), (Raw('"$ORCH_TEXTFILE_DIR"'),), gpu=False)
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
        lines.extend(helper_lines("client_progress"))
    return tuple(lines)


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
    if job.runtime != "host":
        runtime = runtime_of(job)
        lines = list(runtime.image(job, CADVISOR_SOURCE, sidecar=CADVISOR_IMAGE))
        # cAdvisor reads the host's cgroups (/sys) and processes (/proc), which every runtime mounts, and the
        # sockets under /run (/var/run is a link to it, onto which ch-run cannot bind)
        words = runtime.wrap(job, cadvisor_words(job), Raw('"$ORCH_CADVISOR_IMAGE"'), ("/run",), gpu=False)
    else:
        lines = []
        words = cadvisor_words(job)
    publish = ("orch_publish_target cadvisor %d" % job.cadvisor_port,)
    return banner("cAdvisor sidecar") + tuple(lines) + background(words, "ORCH_CADVISOR_PID") + publish


CADVISOR_SOURCE = "docker://gcr.io/cadvisor/cadvisor:v0.49.1"
CADVISOR_IMAGE = ("ORCH_CADVISOR_IMAGE", "cadvisor.sif")
