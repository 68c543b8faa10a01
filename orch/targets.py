"""A client's target: a service found by name (its endpoint file), or a URL.

A URL (a recipe's ``target_endpoint``, ``orch submit --target-endpoint``) is the
target's base: its scheme, host, port and path all count. Health paths are asked
under it (``https://h:8443/base`` + ``/api/tags``), and a load generator that
speaks HTTP gets it whole (``--url``), so a service behind a TLS proxy with a
path prefix is measured where it is.

``target_service.port`` is what a seed recipe says the named service listens on:
orch knows the port the service published, so the statement is checked, not
used: against the URL's port when the recipe read, against the endpoint file's
when the client starts (``orch.sections.client``).
"""
from urllib.parse import urlsplit, urlunsplit

from orch import schema
from orch.kinds import KINDS, kind_named
from orch.records import Target

__all__ = ("recipe_target", "url_target", "DEFAULT_PORTS")

DEFAULT_PORTS = {"http": 80, "https": 443}


def url_target(target, url):
    """``(target aimed at url, None)``, or ``(None, why not)``.

    >>> from orch.records import Target
    >>> aimed, _ = url_target(Target(name="ollama"), "https://h/base/")
    >>> aimed.host, aimed.port, aimed.scheme, aimed.url
    ('h', 443, 'https', 'https://h/base')
    >>> url_target(Target(), "http://h:99999")[1]
    "'http://h:99999' has an invalid port"
    """
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None, "%r is not an http(s) URL with a host" % url
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None, "%r has an invalid port" % url
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return None, "%r: give the base URL alone, without ?query or #fragment" % url
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return target.set(endpoint=url, host=parts.hostname, port=port, scheme=parts.scheme, url=base), None


def recipe_target(kind, block, node, path):
    """``(Target, problems)`` of a client block read by ``orch.recipe`` (``node`` for the problems' lines)."""
    service = block.get("target_service", {})
    name = service.get("name") or kind.target
    target_kind = kind_named(name, KINDS) if name else None
    check = service.get("health_check_endpoint")
    # the recipe's path first; the kind's own as well, since the seed's recipes name
    # paths that newer servers dropped (Chroma's v1 heartbeat)
    paths = [check] if check and check.startswith("/") else []
    if target_kind and target_kind.health_path and target_kind.health_path not in paths:
        paths.append(target_kind.health_path)
    wait = block.get("parameters", {}).get("wait_for_service", 300)
    stated = service.get("port")
    target = Target(name=name, health_check_endpoint=check, stated_port=stated, stated_for=name,
                    kind=target_kind and target_kind.name, health_paths=tuple(paths), wait=wait)
    url = block.get("target_endpoint")
    if not url:
        return target, []
    aimed, why = url_target(target, url)
    if why:
        return None, [(schema.line_of(schema.child(node, "target_endpoint")), path + ".target_endpoint", why)]
    if stated is not None and stated != aimed.port:
        line = schema.key_line(schema.child(node, "target_service"), "port")
        return None, [(line, path + ".target_service.port",
                       "%d, but target_endpoint %r is port %d: write the port in the URL" % (stated, url, aimed.port))]
    return aimed, []
