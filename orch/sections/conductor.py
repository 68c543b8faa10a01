"""The conductor: the small job that runs once an experiment's clients have ended, keeps its metrics and stops its services."""
from orch.metrics import DEFAULT_SCRAPE_INTERVAL, MAX_POINTS, TARGETS_FILE, duration_seconds, queries
from orch.quoting import sbatch_flag, shell_line, word
from orch.sections.client import endpoint_reads
from orch.sections.shell import helper_lines

__all__ = ("conductor_script", "collection_lines")


def conductor_script(experiment_name, run_id, run_dir, service_job_ids, *, stop=True, prometheus_endpoint=None,
                     scrape_interval=DEFAULT_SCRAPE_INTERVAL, start=0):
    """The small job that runs once every client has ended (submitted with afterany).

    It saves the run's metrics from its Prometheus (when the experiment has
    monitoring: ``prometheus_endpoint`` names that endpoint file), then stops
    the services (unless ``stop`` is false: ``keep_services``).
    """
    lines = [
        "#!/bin/bash",
        sbatch_flag("job-name", "%s_%s_conductor" % (experiment_name, run_id)),
        sbatch_flag("output", "%s/logs/conductor-%%j.out" % run_dir),
        sbatch_flag("time", "00:10:00"),
        "# rendered by orch: once the experiment's clients have ended, keeps its metrics and stops its services",
    ]
    if prometheus_endpoint:
        lines.extend(helper_lines("write"))
        lines.extend(collection_lines(prometheus_endpoint, run_dir + "/metrics", run_id, scrape_interval, start))
    if stop and service_job_ids:
        lines.append(shell_line("scancel", *service_job_ids))
        lines.append(shell_line("printf", "%s\\n", "services stopped") + " >&2")
    return "\n".join(lines) + "\n"


def collection_lines(endpoint_file, metrics_dir, run_id, scrape_interval, start):
    """Shell lines that save the range queries of ``queries`` from ``start`` (epoch seconds) until now.

    + endpoint_file: the Prometheus endpoint JSON (host, port) the monitoring job published
    A query that fails is reported and skipped: monitoring never fails the run.
    """
    step = duration_seconds(scrape_interval)
    lines = [
        "orch_prometheus=%s" % word(endpoint_file),
        "orch_metrics=%s" % word(metrics_dir),
        'if [ -s "$orch_prometheus" ]; then',
    ]
    lines.extend("    " + line for line in endpoint_reads('"$orch_prometheus"'))
    lines.extend([
        '    orch_url="http://$orch_host:$orch_port"',
        "    orch_start=%d" % start,
        "    orch_end=$(date +%s)",
        "    orch_step=$(( (orch_end - orch_start) / %d ))" % MAX_POINTS,
        '    if [ "$orch_step" -lt %d ]; then orch_step=%d; fi' % (step, step),
        '    mkdir -p "$orch_metrics"',
        # written whole or not at all: the report never reads half an answer
        "    orch_keep() {",
        '        orch_write "$orch_metrics/$1" "${@:2}" || printf \'metrics: %s not collected\\n\' "$1" >&2',
        "    }",
        "    orch_query() {",
        '        orch_keep "$1.json" curl -fsS --max-time 30 -G "$orch_url/api/v1/query_range" --data-urlencode "query=$2" '
        '--data-urlencode "start=$orch_start" --data-urlencode "end=$orch_end" --data-urlencode "step=$orch_step"',
        "    }",
    ])
    lines.extend("    " + shell_line("orch_query", name, query) for name, query in queries(run_id, scrape_interval))
    lines.extend(
        (
            '    orch_keep %s curl -fsS --max-time 30 "$orch_url/api/v1/targets"' % TARGETS_FILE,
            "    printf 'metrics: saved in %s\\n' \"$orch_metrics\" >&2",
            "else",
            "    printf 'metrics: no Prometheus endpoint (%s): nothing collected\\n' \"$orch_prometheus\" >&2",
            "fi",
        )
    )
    return tuple(lines)
