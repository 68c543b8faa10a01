"""Grafana: provisioned with the recipe's datasources and dashboards (or the run's Prometheus).

Grafana has no package on the machines orch is tested on: its script is
checked by rendering tests and shellcheck only.
"""
import json

from orch import schema
from orch.kinds import Kind
from orch.kinds.common import command_or, health_url, probe_http, setting
from orch.quoting import Literal, Raw, heredoc, word
from orch.sections import banner, service_port, service_sections

__all__ = ("KIND", "datasources_yaml")

PORT = 3000
SOURCE = "docker://grafana/grafana:latest"
PROVISIONING = '"$ORCH_RUN_DIR/grafana/provisioning"'


def _scalar(value):
    # a JSON string is a valid YAML double-quoted scalar: nothing in it is interpreted
    return json.dumps(value)


def datasources_yaml(datasources):
    """datasources.yaml; a ``service_id`` datasource's URL holds a placeholder filled at run time."""
    lines = ["apiVersion: 1", "datasources:"]
    for index, source in enumerate(datasources):
        url = source.get("url") or "http://__ORCH_HOST_%d__:%d" % (index, source.get("port", 9090))
        lines.extend(
            (
                "  - name: %s" % _scalar(source["name"]),
                "    type: %s" % _scalar(source.get("type", "prometheus")),
                "    access: proxy",
                "    uid: %s" % _scalar(source.get("uid", "orch-%d" % index)),
                "    url: %s" % _scalar(url),
                "    isDefault: %s" % ("true" if source.get("is_default", index == 0) else "false"),
            )
        )
    return "\n".join(lines) + "\n"


DASHBOARD_PROVIDER = """apiVersion: 1
providers:
  - name: orch
    orgId: 1
    folder: orch
    type: file
    updateIntervalSeconds: 30
    allowUiUpdates: true
    options:
      path: ${ORCH_GRAFANA_DASHBOARDS}
      foldersFromFilesStructure: false
"""


def _resolve_host(index, service_id, timeout):
    endpoint = word(service_id + ".json")
    return (
        'orch_file="$ORCH_ENDPOINTS_DIR"/%s' % endpoint,
        "orch_waited=0",
        'until [ -s "$orch_file" ] || [ "$orch_waited" -ge %d ]; do sleep 2; orch_waited=$((orch_waited + 2)); done' % timeout,
        """orch_host=$(sed -n 's/.*"host": "\\([^"]*\\)".*/\\1/p' "$orch_file" 2>/dev/null)""",
        '[ -n "$orch_host" ] || orch_fail %s 1' % word("no endpoint for datasource service " + service_id),
        'sed -i "s/__ORCH_HOST_%d__/$orch_host/" "$ORCH_RUN_DIR/grafana/provisioning/datasources/orch.yaml"' % index,
    )


def setup(job):
    datasources = setting(job, "datasources", ())
    lines = list(banner("grafana provisioning"))
    lines.append(
        'mkdir -p "$ORCH_RUN_DIR/grafana/data" "$ORCH_RUN_DIR/grafana/logs" "$ORCH_RUN_DIR/grafana/dashboards" '
        + " ".join('%s/%s' % (PROVISIONING, d) for d in ("datasources", "dashboards", "plugins", "alerting"))
    )
    if datasources:
        lines.extend(heredoc(Raw(PROVISIONING + "/datasources/orch.yaml"), datasources_yaml(datasources)))
        for index, source in enumerate(datasources):
            if not source.get("url"):
                lines.extend(_resolve_host(index, source["service_id"], job.health.timeout))
    else:
        # no datasource in the recipe: the Prometheus published in this endpoints directory, if any
        lines.extend(heredoc(Raw(PROVISIONING + "/datasources/orch.yaml"), datasources_yaml(({"name": "Prometheus", "service_id": "prometheus", "uid": "orch-prometheus"},))))
        lines.extend(
            (
                """orch_host=$(sed -n 's/.*"host": "\\([^"]*\\)".*/\\1/p' "$ORCH_ENDPOINTS_DIR/prometheus.json" 2>/dev/null)""",
                'if [ -n "$orch_host" ]; then sed -i "s/__ORCH_HOST_0__/$orch_host/" "$ORCH_RUN_DIR/grafana/provisioning/datasources/orch.yaml"',
                'else rm -f "$ORCH_RUN_DIR/grafana/provisioning/datasources/orch.yaml"; orch_log "no Prometheus endpoint found: no datasource provisioned"; fi',
            )
        )
    lines.extend(heredoc(Raw(PROVISIONING + "/dashboards/orch.yaml"), DASHBOARD_PROVIDER))
    for path in setting(job, "dashboards", ()):
        lines.append('cp -R %s "$ORCH_RUN_DIR/grafana/dashboards/" || orch_fail %s 1' % (word(path), word("dashboard not found: " + path)))
    return tuple(lines)


def environment(job):
    pairs = [
        ("GF_PATHS_PROVISIONING", Raw(PROVISIONING)),
        ("GF_PATHS_DATA", Raw('"$ORCH_RUN_DIR/grafana/data"')),
        ("GF_PATHS_LOGS", Raw('"$ORCH_RUN_DIR/grafana/logs"')),
        ("GF_SERVER_HTTP_ADDR", Raw('"$ORCH_BIND"')),
        ("GF_SERVER_HTTP_PORT", str(service_port(job, PORT))),
        ("ORCH_GRAFANA_DASHBOARDS", Raw('"$ORCH_RUN_DIR/grafana/dashboards"')),
    ]
    password = setting(job, "admin_password")
    if password:
        # a password is taken literally, "$" and all, like every password orch writes into configuration
        pairs.append(("GF_SECURITY_ADMIN_PASSWORD", Literal(password)))
    return tuple(pairs)


def command(job):
    return command_or(job, "grafana-server", ("--homepath=/usr/share/grafana",))


def probe(job):
    return probe_http(health_url(job, service_port(job, PORT), "/api/health"))


KIND = Kind(
    name="grafana",
    role="service",
    summary="Grafana (provisioned datasources and dashboards; not runnable on orch's test machines)",
    fields={
        "dashboards": schema.TextList(schema.Text(allow_empty=False)),
        "datasources": schema.ListOf(
            schema.Mapping(
                {
                    "name": schema.Text(allow_empty=False),
                    "type": schema.Text(pattern=r"[a-z0-9-]+", hint="a Grafana datasource type"),
                    "url": schema.Text(pattern=r"https?://\S+", hint="an http(s) URL"),
                    "service_id": schema.Text(pattern=r"[A-Za-z0-9_.-]+", hint="a service id"),
                    "port": schema.Integer(1, 65535),
                    "uid": schema.Text(pattern=r"[A-Za-z0-9_-]{1,40}", hint="a Grafana uid"),
                    "is_default": schema.Boolean(),
                },
                required=("name",),
                check=lambda d: [] if ("url" in d) != ("service_id" in d) else [("url", "give exactly one of url and service_id")],
            )
        ),
        "admin_password": schema.Text(),
    },
    env_fields={"GF_SECURITY_ADMIN_PASSWORD": "admin_password"},
    port=PORT,
    docker_source=SOURCE,
    health_path="/api/health",
    sections=service_sections(
        command=command,
        probe=probe,
        port=lambda job: service_port(job, PORT),
        docker_source=SOURCE,
        setup=(setup,),
        env=environment,
    ),
)
