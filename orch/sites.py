"""Site profiles: what differs between clusters, as data."""
from orch.records import Site

__all__ = ("SITES", "MELUXINA", "LOCAL", "site_named")

MELUXINA = Site(
    name="meluxina",
    modules=("Apptainer/1.2.4-GCCcore-12.3.0",),
    purge_modules=True,
    account="p200981",
    login="login.lxp.lu",
    login_port=8822,
    container_dir="$HOME/containers",
    bind_address="0.0.0.0",
)

# A workstation or a test cluster: nothing to load, everything on loopback.
LOCAL = Site(
    name="local",
    container_dir="$HOME/containers",
    bind_address="127.0.0.1",
    advertise_host="127.0.0.1",
)

SITES = {site.name: site for site in (MELUXINA, LOCAL)}


def site_named(name):
    """Return the site profile called ``name``.

    >>> site_named("local").bind_address
    '127.0.0.1'
    """
    try:
        return SITES[name]
    except KeyError:
        raise KeyError("unknown site %r (known: %s)" % (name, ", ".join(sorted(SITES)))) from None
