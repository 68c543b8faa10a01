"""``orch tunnel``: which service a name means, where it listens, and the ssh command that reaches it (pure).

A service runs on a compute node that only the login node can reach:
``ssh -N -L LOCAL:NODE:PORT LOGIN`` forwards a port of this machine to it
through the login node. The CLI reads the run records and the endpoint
files; everything here only turns them into names, addresses and words.
"""
import json
import re
from collections.abc import Mapping

from orch.errors import OrchError
from orch.quoting import literal
from orch.argv import connection_options

__all__ = (
    "NoEndpoint",
    "services",
    "service_names",
    "service_named",
    "endpoint_files",
    "endpoint_address",
    "tunnel_argv",
    "command_text",
    "local_url",
    "service_url",
)

# what orch's scripts publish as a host: a node name or an IPv4 address (it goes into -L and a URL)
HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


class NoEndpoint(OrchError):
    """The service has not published an endpoint (not ready yet, or ended)."""


def services(record, members):
    """The run's services: an experiment's members that are not clients, else the run itself if it is a service.

    >>> [s["name"] for s in services({"role": "experiment"}, [{"role": "service", "name": "redis"}, {"role": "client", "name": "b"}])]
    ['redis']
    """
    if record.get("role") == "experiment":
        return [member for member in members if member.get("role") != "client"]
    return [record] if record.get("role") != "client" else []


def service_names(found):
    """How the user names each service: its alias in the experiment, else its name.

    >>> service_names([{"alias": "cache", "name": "redis"}, {"name": "grafana"}])
    ['cache', 'grafana']
    """
    return [service.get("alias") or service["name"] for service in found]


def service_named(record, members, wanted):
    """The run record of the service called ``wanted`` (its alias, else its name, else its job name), or None.

    >>> experiment = {"role": "experiment"}
    >>> members = [{"role": "service", "alias": "cache", "name": "redis", "id": "a"},
    ...            {"role": "service", "alias": "redis", "name": "redis", "id": "b"}]
    >>> service_named(experiment, members, "redis")["id"], service_named(experiment, members, "cache")["id"]
    ('b', 'a')
    >>> service_named(experiment, members, "grafana") is None
    True
    """
    found = services(record, members)
    for key in ("alias", "name", "job_name"):
        named = [service for service in found if service.get(key) == wanted]
        if named:
            return named[0]
    return None


def endpoint_files(record):
    """Where the service publishes its endpoint: under its job name (this very run's), then under its name.

    >>> endpoint_files({"endpoints_dir": "/r/endpoints", "job_name": "grafana_1a2b", "name": "grafana"})
    ('/r/endpoints/grafana_1a2b.json', '/r/endpoints/grafana.json')
    """
    base = record["endpoints_dir"].rstrip("/")
    return tuple("%s/%s.json" % (base, stem) for stem in (record["job_name"], record["name"]))


def endpoint_address(endpoint, run_id=None):
    """``(host, port)`` of a published endpoint (a mapping or an endpoint file's JSON text), or None.

    With ``run_id``, an endpoint that another run published (its ``orch_id``) is None too:
    single runs share one endpoints directory, and ``<name>.json`` may be another run's.

    >>> endpoint_address({"host": "mel2073", "port": 3000})
    ('mel2073', 3000)
    >>> endpoint_address('{"host": "mel2073", "port": 3000, "orch_id": "other"}', run_id="mine") is None
    True
    >>> endpoint_address('{"host": "x; rm -rf /", "port": 3000}') is None
    True
    """
    if isinstance(endpoint, str):
        try:
            endpoint = json.loads(endpoint)
        except ValueError:
            return None
    if not isinstance(endpoint, Mapping):
        return None
    if run_id is not None and endpoint.get("orch_id") not in (None, run_id):
        return None
    host, port = endpoint.get("host"), endpoint.get("port")
    if not isinstance(host, str) or not HOST.match(host):
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return None
    return host, port


def tunnel_argv(remote, host, port, local_port, ssh_config=None):
    """The ssh command that forwards ``localhost:local_port`` to ``host:port`` through the login node.

    It takes orch's way to the login node (ssh config file, port), but not its
    shared connection: with ``ControlPersist`` ssh hands the forward to a
    background master and returns at once, and the tunnel would outlive the
    command that was meant to hold it.

    >>> from orch.argv import parse_remote
    >>> tunnel_argv(parse_remote("u100@login.lxp.lu:8822"), "mel2073", 3000, 13000)
    ('ssh', '-N', '-L', '13000:mel2073:3000', '-o', 'ExitOnForwardFailure=yes', '-o', 'ConnectTimeout=15', '-p', '8822', 'u100@login.lxp.lu')
    """
    forward = "%d:%s:%d" % (local_port, host, port)
    # ExitOnForwardFailure: a local port already in use is an error, not a tunnel that forwards nothing
    options = ("-o", "ExitOnForwardFailure=yes", "-o", "ConnectTimeout=15")
    return ("ssh", "-N", "-L", forward) + options + connection_options(remote, ssh_config) + (remote.destination,)


def command_text(argv):
    """``argv`` as one line to paste into a shell.

    >>> command_text(("ssh", "-F", "my config", "u@h"))
    "ssh -F 'my config' u@h"
    """
    return " ".join(literal(word) for word in argv)


def local_url(local_port):
    """The URL that reaches the service through the tunnel.

    >>> local_url(3000)
    'http://localhost:3000/'
    """
    return "http://localhost:%d/" % local_port


def service_url(host, port):
    """The service's own URL (no tunnel).

    >>> service_url("127.0.0.1", 3000)
    'http://127.0.0.1:3000/'
    """
    return "http://%s:%d/" % (host, port)
