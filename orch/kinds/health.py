"""What a service recipe's ``health_check.endpoint`` means: one rule for every kind.

- A path (``/api/tags``) is checked on the service's own address and port,
  ``http://$ORCH_LOCAL:<port><path>``, in place of the kind's own path.
- A full http(s) URL is checked as written (another host, https, a proxy in front).
  One that names this node (``localhost``, ``127.0.0.1``, ``::1``) must name the
  service's own port: a URL copied along when only ``ports`` changed would check
  whatever else listens there.
- A kind checked with its own client (redis-cli, mysqladmin, pg_isready) is not
  checked over HTTP: its endpoint is refused, except a URL of its own scheme that
  names this node and its port (the seed's ``redis://localhost:6379``), which
  says what its check does anyway.

``endpoint_problem`` applies the rule when a recipe is read; ``health_url`` when the
script is rendered.
"""
import ipaddress
from urllib.parse import urlsplit

from orch.kinds.common import local_url

__all__ = ("endpoint_problem", "health_url", "endpoint_path", "names_this_node")

HTTP_PORTS = {"http": 80, "https": 443}


def names_this_node(host):
    """True when ``host`` is this node's own loopback (or any-address) name.

    >>> [names_this_node(h) for h in ("localhost", "127.0.0.1", "::1", "0.0.0.0", "mel2073", None)]
    [True, True, True, True, False, False]
    """
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def endpoint_path(endpoint):
    """The path of an endpoint (a path, or a URL's path; ``/`` when it has none).

    >>> endpoint_path("http://localhost:8000/api/v1/heartbeat"), endpoint_path("/x"), endpoint_path("http://h")
    ('/api/v1/heartbeat', '/x', '/')
    """
    return endpoint if endpoint.startswith("/") else urlsplit(endpoint).path or "/"


def _port_problem(endpoint, parts, port, default_port):
    try:
        given = parts.port or default_port
    except ValueError:
        return "%r has an invalid port" % endpoint
    if port is not None and given != port and names_this_node(parts.hostname):
        return "%r is this node at port %s, but the service listens on %d: write the path alone (%s)" % (
            endpoint, given, port, endpoint_path(endpoint))
    return None


def endpoint_problem(kind, endpoint, port):
    """Why ``endpoint`` cannot be the readiness check of a ``kind`` service listening on ``port``; None when it can.

    >>> from orch.kinds import KINDS
    >>> endpoint_problem(KINDS["ollama"], "http://localhost:11434/api/tags", 11435)
    "'http://localhost:11434/api/tags' is this node at port 11434, but the service listens on 11435: write the path alone (/api/tags)"
    >>> endpoint_problem(KINDS["redis"], "redis://localhost:6379", 6379) is None
    True
    """
    parts = urlsplit(endpoint)
    if kind.health_path is not None:
        if endpoint.startswith("/"):
            return None
        if parts.scheme not in HTTP_PORTS or not parts.hostname:
            return "%r is neither a path (/...) nor an http(s) URL with a host" % endpoint
        return _port_problem(endpoint, parts, port, HTTP_PORTS[parts.scheme])
    refusal = "%s is checked with its own client on its own port, not over HTTP: leave endpoint out" % kind.name
    if parts.scheme not in kind.endpoint_schemes or not names_this_node(parts.hostname):
        return refusal
    return _port_problem(endpoint, parts, port, kind.port)


def health_url(job, port, path):
    """The URL a service's readiness check asks: its recipe's endpoint by the rule above, else ``path`` on itself.

    A recipe's URL comes back as the recipe wrote it (quoted where it reaches the script).
    """
    endpoint = job.health.endpoint
    if endpoint and not endpoint.startswith("/"):
        return endpoint
    return local_url(port, endpoint or path)
