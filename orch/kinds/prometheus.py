"""Prometheus: scrapes itself, the recipe's monitoring_targets and every target orch publishes.

A ``service_id`` target is found through the endpoints directory when the
job starts (bounded wait), so nobody copies node names into the recipe.
"""
from orch import schema
from orch.kinds.common import command_with, setting
from orch.kinds.service import service_kind
from orch.quoting import Raw, shell_line, word
from orch.sections import await_endpoint, banner, service_port

__all__ = ("KIND", "config_lines")

# the server itself, as a recipe\'s command may name it: args given to it get orch\'s flags after them
PROGRAMS = ("prometheus",)

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


DATA = '"$ORCH_RUN_DIR/prometheus-data"'


def storage_path(job):
    """Where Prometheus is told its data is: the recipe's ``storage_path`` (a path in the container, where
    ``binds`` puts the data directory; no container on the host runtime), else the data directory itself."""
    path = setting(job, "storage_path")
    return Raw(path) if path and job.runtime != "host" else Raw(DATA)


def binds(settings):
    """The run's data directory, bound at the recipe's ``storage_path`` (the seed's PROMETHEUS_STORAGE_PATH)."""
    path = settings.get("storage_path")
    return ("$ORCH_RUN_DIR/prometheus-data:%s" % path,) if path else ()


def command(job):
    config = Raw('--config.file="$ORCH_RUN_DIR/state/prometheus.yml"')
    retention = "--storage.tsdb.retention.time=%s" % setting(job, "retention_time", "15d")
    listen = Raw('--web.listen-address="$ORCH_BIND":%d' % service_port(job, PORT))
    appended = []
    if setting(job, "scrape_interval") or setting(job, "monitoring_targets"):
        appended.append(("--config.file", (config,)))
    if setting(job, "retention_time"):
        appended.append(("--storage.tsdb.retention.time", (retention,)))
    if setting(job, "storage_path"):
        appended.append(("--storage.tsdb.path", (Raw("--storage.tsdb.path=" + storage_path(job)),)))
    if job.ports:
        appended.append(("--web.listen-address", (listen,)))
    return command_with(
        job,
        "prometheus",
        (config, Raw("--storage.tsdb.path=" + storage_path(job)), retention, listen, "--web.enable-lifecycle"),
        appended,
        PROGRAMS,
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
        # the seed's PROMETHEUS_STORAGE_PATH: where the data is in the container
        "storage_path": schema.Text(pattern=r"/[A-Za-z0-9_./-]*", hint="an absolute path in the container (e.g. /prometheus)"),
    },
    env_fields={"PROMETHEUS_RETENTION_TIME": "retention_time", "PROMETHEUS_STORAGE_PATH": "storage_path"},
    port=PORT,
    docker_source=SOURCE,
    health_path="/-/ready",
    command=command,
    setup=(setup,),
    arg_options={
        "retention_time": ("--storage.tsdb.retention.time",),
        "scrape_interval": ("--config.file",),
        "monitoring_targets": ("--config.file",),
        "storage_path": ("--storage.tsdb.path",),
    },
    binds=binds,
    programs=PROGRAMS,
)
