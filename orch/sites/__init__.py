"""Site profiles: what differs between clusters, as YAML files a user can read, copy and edit.

orch ships ``meluxina.yaml`` and ``local.yaml`` beside this module; a user's
own profiles live in ``$ORCH_HOME/sites`` (``~/.orch/sites``) and win over the
shipped ones of the same name. ``--site`` takes a name or a file's path.
A profile is checked like a recipe: every problem as ``FILE:LINE: field: message``.
"""
import os
import re
from importlib import resources

from pyrsistent import pmap

from orch import schema
from orch.effects import files
from orch.errors import Problem, RecipeError
from orch.records import NAME, SAFE_PATH, Site

__all__ = ("parse_site", "site_named", "resolve_site", "shipped_site_names", "SITE_FIELDS", "RUNTIME_NAMES")

RUNTIME_NAMES = ("apptainer", "charliecloud", "host")
PLAIN = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}"
# a module name as Lmod spells it (Apptainer/1.2.4-GCCcore-12.3.0)
MODULE = r"[A-Za-z0-9_][A-Za-z0-9_.+/-]{0,127}"
# a directory: a path, $HOME or ${HOME} at its start allowed (expanded on the node)
DIRECTORY = r"(?:\$HOME|\$\{HOME\})?[A-Za-z0-9_./+-]+"
ADDRESS = r"[A-Za-z0-9_.:-]{1,253}"

SITE_FIELDS = schema.Mapping(
    {
        "name": schema.Text(pattern=NAME, hint="a site name (letters, digits, _ . -)", allow_empty=False),
        "description": schema.Text(),
        "login": schema.Text(pattern=ADDRESS, hint="a host name"),
        "login_port": schema.Integer(1, 65535),
        "account": schema.Text(pattern=PLAIN, hint="a plain account name (e.g. p200981)"),
        "qos": schema.Text(pattern=PLAIN, hint="a plain QOS name"),
        "partitions": schema.Mapping(
            {"cpu": schema.Text(pattern=PLAIN, hint="a plain partition name"),
             "gpu": schema.Text(pattern=PLAIN, hint="a plain partition name")}
        ),
        "runtime": schema.Text(choices=RUNTIME_NAMES),
        "modules": schema.Mapping(
            dict({"purge": schema.Boolean()},
                 **{name: schema.ListOf(schema.Text(pattern=MODULE, hint="a module name")) for name in RUNTIME_NAMES})
        ),
        "python": schema.Text(pattern=SAFE_PATH, hint="an interpreter's path or name (letters, digits, _ . / + -)"),
        "python_modules": schema.ListOf(schema.Text(pattern=MODULE, hint="a module name")),
        "services": schema.Mapping(
            {"bind": schema.Text(pattern=ADDRESS, hint="an address (0.0.0.0, 127.0.0.1, ...)"),
             "publish": schema.Text(pattern=ADDRESS, hint="hostname, or an address")}
        ),
        "images": schema.Mapping(
            {"directory": schema.Text(pattern=DIRECTORY, hint="a directory ($HOME/... allowed)"),
             "pull": schema.Text(choices=("missing", "never"))}
        ),
        "runs_root": schema.Text(pattern=DIRECTORY, hint="a directory ($HOME/... allowed)"),
    },
    required=("name",),
)


def _site_of(fields, source):
    """The ``Site`` record for a profile's checked fields."""
    modules = dict(fields.get("modules", {}))
    services = fields.get("services", {})
    images = fields.get("images", {})
    partitions = fields.get("partitions", {})
    publish = services.get("publish", "hostname")
    return Site(
        name=fields["name"],
        description=fields.get("description"),
        runtime=fields.get("runtime", "apptainer"),
        purge_modules=modules.pop("purge", False),
        modules=pmap({runtime: tuple(names) for runtime, names in modules.items()}),
        account=fields.get("account"),
        partition=partitions.get("cpu"),
        gpu_partition=partitions.get("gpu"),
        qos=fields.get("qos"),
        runs_root=fields.get("runs_root", "orch-runs"),
        image_dir=images.get("directory", "$HOME/containers"),
        pull=images.get("pull", "missing"),
        bind_address=services.get("bind", "0.0.0.0"),
        advertise_host=None if publish == "hostname" else publish,
        login=fields.get("login"),
        login_port=fields.get("login_port"),
        python=fields.get("python"),
        python_modules=fields.get("python_modules", ()),
        source=source,
    )


def parse_site(text, filename="<site>"):
    """The ``Site`` a profile's text describes, or ``RecipeError`` with every problem."""
    try:
        document = schema.read_document(text)
    except Exception as error:  # strictyaml and ruamel raise many types, all with a mark
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        message = getattr(error, "problem", None) or str(error).strip().splitlines()[-1]
        raise RecipeError([Problem(filename, mark.line + 1 if mark else 0, "", "not a valid site profile: %s" % message)]) from None
    if not document.is_mapping() or [key.data for key, _ in document.items()] != ["site"]:
        raise RecipeError([Problem(filename, 1, "", "a site profile is a mapping with one site: block")])
    fields, found = SITE_FIELDS.read(document["site"], "site")
    if found:
        raise RecipeError([Problem(filename, line, field, message) for line, field, message in found])
    return _site_of(fields, filename)


def shipped_site_names():
    return tuple(sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml")))


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError([Problem(str(path), 0, "", "cannot read the site profile: %s" % (getattr(error, "strerror", None) or error))]) from None


def site_named(name, directories=()):
    """The site profile called ``name``: ``NAME.yaml`` in the first of ``directories`` that has one, else orch's own.

    >>> site_named("local").bind_address
    '127.0.0.1'
    """
    if not re.fullmatch(NAME, name):
        raise RecipeError([Problem(name, 0, "--site", "not a site name or a profile file")])
    for directory in directories:
        if name + ".yaml" in files.list_dir(directory):
            path = os.path.join(directory, name + ".yaml")
            return parse_site(_read(path), path)
    shipped = resources.files(__name__) / (name + ".yaml")
    if not shipped.is_file():
        known = sorted(set(shipped_site_names()) | {n[:-5] for d in directories for n in files.list_dir(d) if n.endswith(".yaml")})
        raise RecipeError([Problem(name, 0, "--site", "unknown site %r (known: %s; or give a profile file's path)" % (name, ", ".join(known)))])
    return parse_site(shipped.read_text(encoding="utf-8"), "orch/sites/%s.yaml" % name)


def resolve_site(site, directories=()):
    """A ``Site`` as it is, a profile file's path (with a ``/`` or ending in ``.yaml``), or a name (see ``site_named``)."""
    if isinstance(site, Site):
        return site
    if "/" in site or site.endswith((".yaml", ".yml")):
        return parse_site(_read(site), site)
    return site_named(site, directories)
