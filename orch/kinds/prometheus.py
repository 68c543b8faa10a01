"""Prometheus: scrapes itself, the recipe's monitoring_targets and every target orch publishes.

A ``service_id`` target is found through the endpoints directory when the
job starts (bounded wait), so nobody copies node names into the recipe.
"""
from orch import schema
from orch.kinds.common import command_or, setting
from orch.kinds.service import service_kind
from orch.quoting import Raw, shell_line, word
from orch.sections import await_endpoint, banner, service_port

__all__ = ("KIND", "config_lines")

PORT = 9090
SOURCE = "docker://prom/prometheus:latest"
NAME = r"[A-Za-z0-9_][A-Za-z0-9_.:-]*"
DURATION = r"(?:\d+(?:ms|s|m|h|d|w|y))+"


def _target_line(job_name, address_word):
    return shell_line(
        "printf", "  - job_name: '%s'\\n    static_configs:\\n      - targets: ['%s']\\n", job_name, Raw(address_word)
    ) + ' >> "$ORCH_PROM_CONFIG"'


def config_lines(job):
    """Shell lines that write prometheus.yml; target hosts may be found at run time."""
    interval = setting(job, "scrape_interval", "15s")
    lines = [
        'ORCH_PROM_CONFIG="$ORCH_RUN_DIR/state/prometheus.yml"',
        shell_line("printf", "global:\\n  scrape_interval: %s\\nscrape_configs:\\n", interval) + ' > "$ORCH_PROM_CONFIG"',
        _target_line("prometheus", '"$ORCH_LOCAL:%d"' % service_port(job, PORT)),
        # every exporter a job of orch starts is published here as a file_sd file (sections.scrape_targets)
        shell_line(
            "printf",
            "  - job_name: 'orch'\\n    file_sd_configs:\\n      - files: ['%s/*.targets.json']\\n        refresh_interval: 10s\\n",
            Raw('"$ORCH_ENDPOINTS_DIR"'),
        ) + ' >> "$ORCH_PROM_CONFIG"',
    ]
    for target in job.settings.get("monitoring_targets", ()):
        # the older tool's defaults: the job is named after the target; a service's port is its own
        job_name = target.get("job_name") or target.get("service_id") or target.get("host")
        port = target.get("port")
        if target.get("host"):
            lines.append(_target_line(job_name, word(target["host"]) + ":%d" % port))
            continue
        lines.extend(await_endpoint(target["service_id"], job.health.timeout, port=None if port else "orch_port"))
        address = '"$orch_host":%d' % port if port else '"$orch_host:$orch_port"'
        lines.extend(
            (
                'if [ -n "$orch_host" ]%s; then' % ("" if port else ' && [ -n "$orch_port" ]'),
                "    " + _target_line(job_name, address),
                "else",
                "    orch_log %s" % word("no endpoint for %s yet: not scraped" % target["service_id"]),
                "fi",
            )
        )
    return tuple(lines)


def _target_rules(target):
    problems = [] if ("service_id" in target) != ("host" in target) else [("service_id", "give exactly one of service_id and host")]
    if "host" in target and "port" not in target:
        problems.append(("port", "is required with host (with service_id it defaults to the service's own port)"))
    return problems


def setup(job):
    return banner("prometheus configuration") + ('mkdir -p "$ORCH_RUN_DIR/prometheus-data"',) + config_lines(job)


def command(job):
    return command_or(
        job,
        "prometheus",
        (
            Raw('--config.file="$ORCH_RUN_DIR/state/prometheus.yml"'),
            Raw('--storage.tsdb.path="$ORCH_RUN_DIR/prometheus-data"'),
            "--storage.tsdb.retention.time=%s" % setting(job, "retention_time", "15d"),
            Raw('--web.listen-address="$ORCH_BIND":%d' % service_port(job, PORT)),
            "--web.enable-lifecycle",
        ),
    )


KIND = service_kind(
    "prometheus",
    "Prometheus (scrapes monitoring_targets, found by service id, and orch's published targets)",
    fields={
        "monitoring_targets": schema.ListOf(
            schema.Mapping(
                {
                    "service_id": schema.Text(pattern=r"[A-Za-z0-9_][A-Za-z0-9_.-]*", hint="a service id (name_id)"),
                    "host": schema.Text(pattern=r"[A-Za-z0-9][A-Za-z0-9.-]*", hint="a host name"),
                    "job_name": schema.Text(pattern=NAME, hint="a job name (letters, digits, _ . : -)"),
                    "port": schema.Integer(1, 65535),
                },
                check=_target_rules,
            )
        ),
        "retention_time": schema.Text(pattern=DURATION, hint="a Prometheus duration (e.g. 15d, 12h)"),
        "scrape_interval": schema.Text(pattern=DURATION, hint="a Prometheus duration (e.g. 15s)"),
    },
    env_fields={"PROMETHEUS_RETENTION_TIME": "retention_time"},
    port=PORT,
    docker_source=SOURCE,
    health_path="/-/ready",
    command=command,
    setup=(setup,),
)
