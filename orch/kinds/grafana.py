"""Grafana: provisioned with a datasource (the run's Prometheus, or the recipe's) and orch's dashboards.

The dashboards orch ships (``orch/dashboards/*.json``: service resources,
benchmark progress) are written into the script itself, so the compute node
needs no orch installation. Grafana has no package on the machines orch is
tested on: the tests run the provisioning with a stand-in ``grafana-server``.
"""
import json
from functools import lru_cache
from importlib.resources import files

from orch import schema
from orch.kinds.common import command_or, setting
from orch.kinds.service import service_kind
from orch.quoting import Literal, Raw, heredoc, word
from orch.sections import await_endpoint, banner, service_port

__all__ = ("KIND", "datasources_yaml", "shipped_dashboards")

PORT = 3000
SOURCE = "docker://grafana/grafana:latest"
PROVISIONING = '"$ORCH_RUN_DIR/grafana/provisioning"'
DATASOURCES_FILE = Raw(PROVISIONING + "/datasources/orch.yaml")
DASHBOARDS_DIR = '"$ORCH_RUN_DIR/grafana/dashboards"'
# the datasource every shipped dashboard names
PROMETHEUS_UID = "orch-prometheus"
SERVICE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"


def _scalar(value):
    # a JSON string is a valid YAML double-quoted scalar: nothing in it is interpreted
    return json.dumps(value)


def _endpoint_url(index, source):
    """A ``service_id`` datasource's URL: placeholders the script fills from the endpoint file."""
    port = source.get("port")
    return "http://__ORCH_HOST_%d__:%s" % (index, port if port else "__ORCH_PORT_%d__" % index)


def datasources_yaml(datasources):
    """datasources.yaml; a ``service_id`` datasource's URL holds placeholders filled at run time.

    >>> print(datasources_yaml(({"name": "P", "service_id": "prometheus"},)), end="")
    apiVersion: 1
    datasources:
      - name: "P"
        type: "prometheus"
        access: proxy
        uid: "orch-0"
        url: "http://__ORCH_HOST_0__:__ORCH_PORT_0__"
        isDefault: true
    """
    lines = ["apiVersion: 1", "datasources:"]
    for index, source in enumerate(datasources):
        lines.extend(
            (
                "  - name: %s" % _scalar(source["name"]),
                "    type: %s" % _scalar(source.get("type", "prometheus")),
                "    access: proxy",
                "    uid: %s" % _scalar(source.get("uid", "orch-%d" % index)),
                "    url: %s" % _scalar(source.get("url") or _endpoint_url(index, source)),
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


@lru_cache(maxsize=None)
def shipped_dashboards():
    """``(file name, JSON text)`` of every dashboard orch ships, sorted by name.

    The text is compacted to one line: the script carries it in a heredoc.

    >>> [name for name, _ in shipped_dashboards()]
    ['benchmark-progress.json', 'service-resources.json']
    """
    folder = files("orch") / "dashboards"
    found = sorted((entry.name, entry) for entry in folder.iterdir() if entry.name.endswith(".json"))
    return tuple(
        (name, json.dumps(json.loads(entry.read_text(encoding="utf-8")), separators=(",", ":")))
        for name, entry in found
    )


def _fill_endpoint(index):
    return 'sed -i "s/__ORCH_HOST_%d__/$orch_host/; s/__ORCH_PORT_%d__/$orch_port/" %s' % (index, index, DATASOURCES_FILE)


def recipe_datasources(job, datasources):
    """The recipe's datasources; one named by ``service_id`` that never publishes an endpoint fails the job."""
    lines = list(heredoc(DATASOURCES_FILE, datasources_yaml(datasources)))
    for index, source in enumerate(datasources):
        if source.get("url"):
            continue
        service = source["service_id"]
        lines.extend(await_endpoint(service, job.health.timeout))
        lines.append('if [ -z "$orch_host" ] || [ -z "$orch_port" ]; then orch_fail %s 1; fi' % word("no endpoint for datasource service " + service))
        lines.append(_fill_endpoint(index))
    return tuple(lines)


def run_prometheus(job):
    """The run's Prometheus as the datasource, once it has published its endpoint; Grafana starts without one if it never does."""
    service = setting(job, "prometheus_service", "prometheus")
    source = {"name": "Prometheus", "service_id": service, "uid": PROMETHEUS_UID}
    return (
        heredoc(DATASOURCES_FILE, datasources_yaml((source,)))
        + await_endpoint(service, job.health.timeout)
        + (
            'if [ -n "$orch_host" ] && [ -n "$orch_port" ]; then %s' % _fill_endpoint(0),
            'else rm -f %s; orch_log %s; fi'
            % (DATASOURCES_FILE, word("no endpoint from Prometheus service %s: no datasource provisioned" % service)),
        )
    )


def dashboards(job):
    """orch's own dashboards (unless ``orch_dashboards: false``), then the recipe's, copied (a same-named one wins)."""
    lines = []
    if setting(job, "orch_dashboards", True):
        for name, text in shipped_dashboards():
            lines.extend(heredoc(Raw(DASHBOARDS_DIR + "/" + word(name)), text))
    for path in setting(job, "dashboards", ()):
        # "--": a path that begins with "-" is a path, not an option of cp
        lines.append('cp -R -- %s %s/ || orch_fail %s 1' % (word(path), DASHBOARDS_DIR, word("dashboard not found: " + path)))
    return tuple(lines)


def setup(job):
    datasources = setting(job, "datasources", ())
    lines = list(banner("grafana provisioning"))
    lines.append(
        'mkdir -p "$ORCH_RUN_DIR/grafana/data" "$ORCH_RUN_DIR/grafana/logs" %s ' % DASHBOARDS_DIR
        + " ".join("%s/%s" % (PROVISIONING, d) for d in ("datasources", "dashboards", "plugins", "alerting"))
    )
    lines.extend(recipe_datasources(job, datasources) if datasources else run_prometheus(job))
    lines.extend(heredoc(Raw(PROVISIONING + "/dashboards/orch.yaml"), DASHBOARD_PROVIDER))
    lines.extend(dashboards(job))
    return tuple(lines)


def environment(job):
    pairs = [
        ("GF_PATHS_PROVISIONING", Raw(PROVISIONING)),
        ("GF_PATHS_DATA", Raw('"$ORCH_RUN_DIR/grafana/data"')),
        ("GF_PATHS_LOGS", Raw('"$ORCH_RUN_DIR/grafana/logs"')),
        ("GF_SERVER_HTTP_ADDR", Raw('"$ORCH_BIND"')),
        ("GF_SERVER_HTTP_PORT", str(service_port(job, PORT))),
        ("ORCH_GRAFANA_DASHBOARDS", Raw(DASHBOARDS_DIR)),
    ]
    password = setting(job, "admin_password")
    if password:
        # a password is taken literally, "$" and all, like every password orch writes into configuration
        pairs.append(("GF_SECURITY_ADMIN_PASSWORD", Literal(password)))
    return tuple(pairs)


def command(job):
    return command_or(job, "grafana-server", ("--homepath=/usr/share/grafana",))


KIND = service_kind(
    "grafana",
    "Grafana (the run's Prometheus as datasource, orch's dashboards; not runnable on orch's test machines)",
    fields={
        "dashboards": schema.TextList(schema.Text(allow_empty=False)),
        "orch_dashboards": schema.Boolean(),
        "prometheus_service": schema.Text(pattern=SERVICE_NAME, hint="a service name"),
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
    command=command,
    setup=(setup,),
    env=environment,
)
