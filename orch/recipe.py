"""Recipes in, Job records out: the one place where recipe text is validated.

``load_job(path)`` reads a recipe file (the seed's format: ``service:`` or
``client:`` at the top, flow-style lists allowed) and returns a ``Job``, or
raises ``RecipeError`` listing every problem as ``FILE:LINE: field: message``.
"""
import hashlib
import re
from pyrsistent import pmap

from orch import schema
from orch.effects.registry import sites_dir
from orch.errors import Problem, RecipeError
from orch.kinds import KINDS, kind_named
from orch.nodes import constraint_problem, expand_hostlist, hostlist_problem
from orch.parameters import client_parameters, parameters_spec, read_sweep, sweep_spec
from orch.quoting import Literal
from orch.recipe_checks import SECRET_ENV, literal_names, structure_problems, value_problems
from orch.records import NAME, SAFE_PATH, Container, HealthCheck, Job, Resources, frozen
from orch.sites import RUNTIME_NAMES, resolve_site
from orch.sweep import fixed
from orch.targets import recipe_target

# read_sweep: an experiment's sweep: is read as a client's is
__all__ = ("load_job", "read_recipe", "parse_job", "recipe_id", "read_sweep", "RUNTIME_NAMES", "COMMON_FIELDS")

# SLURM --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]]
TIME = r"(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|UNLIMITED|INFINITE)"
# SLURM --mem: a whole number with an optional K/M/G/T unit (and B); no fractions, no KiB
MEM = r"\d+(?:[KkMmGgTt][Bb]?)?"
# SLURM --gres: name[:type][:count], comma-separated
GRES = r"[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z0-9_.-]+)?(?::\d+)?(?:,[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z0-9_.-]+)?(?::\d+)?)*"
PLAIN = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}"

RESOURCES = schema.Mapping(
    {
        "nodes": schema.Integer(1),
        "ntasks": schema.Integer(1),
        "ntasks_per_node": schema.Integer(1),
        "cpus_per_task": schema.Integer(1),
        "mem": schema.Text(pattern=MEM, hint="a SLURM memory size (e.g. 4G, 4096M, 16GB; no fractions)"),
        "time": schema.Text(pattern=TIME, hint="a SLURM time limit (e.g. 30, 01:00:00, 1-12:00:00)"),
        "partition": schema.Text(pattern=PLAIN, hint="a plain partition name"),
        "qos": schema.Text(pattern=PLAIN, hint="a plain QOS name"),
        "gres": schema.Text(pattern=GRES, hint="a SLURM gres request (e.g. gpu:1, gpu:a100:2)"),
        "account": schema.Text(pattern=PLAIN, hint="a plain account name (e.g. p200981)"),
        "nodelist": schema.Text(check=hostlist_problem),
        "exclude": schema.Text(check=hostlist_problem),
        "constraint": schema.Text(check=constraint_problem),
    },
    check=lambda given: _both_listed_and_excluded(given.get("nodelist"), given.get("exclude")),
)


def _both_listed_and_excluded(nodelist, exclude):
    """A node both asked for and excluded: SLURM would refuse the job; say which one here."""
    if not nodelist or not exclude:
        return []
    wanted, excluded = expand_hostlist(nodelist), expand_hostlist(exclude)
    if wanted is None or excluded is None:  # thousands of names: SLURM will say it
        return []
    both = [name for name in wanted if name in set(excluded)]
    return [("exclude", "%s is in nodelist too: a job cannot both need and avoid a node" % both[0])] if both else []

COMMON_FIELDS = {
    "name": schema.Text(pattern=NAME, hint="a kind name (letters, digits, _ . -)", allow_empty=False),
    "description": schema.Text(),
    "container_image": schema.Text(allow_empty=False),
    "command": schema.Text(allow_empty=False),
    "args": schema.TextList(),
    "container": schema.Mapping(
        {
            "docker_source": schema.Text(allow_empty=False),
            "image_path": schema.Text(allow_empty=False),
            "build_commands": schema.TextList(),
            "force_rebuild": schema.Boolean(),
            # src[:dst[:opts]], each path absolute or from a variable ($SCRATCH/data): a relative one would be
            # relative to wherever the runtime happens to start
            "bind_mounts": schema.TextList(schema.Text(
                pattern=r"(?:/|\$\{?[A-Za-z_])[^:]*(?::(?:/|\$\{?[A-Za-z_])[^:]*(?::[A-Za-z0-9_,=-]+)?)?",
                hint="src[:dst[:options]] with absolute paths (or $VARIABLE/...)")),
        }
    ),
    "resources": RESOURCES,
    "environment": schema.EnvMapping(),
    "ports": schema.ListOf(schema.Integer(1, 65535)),
    "health_check": schema.Mapping(
        {
            "endpoint": schema.Text(),
            "timeout": schema.Integer(1, 86400),
            "retries": schema.Integer(1, 100000),
            "interval": schema.Integer(1, 3600),
        }
    ),
    "enable_cadvisor": schema.Boolean(),
    "cadvisor_port": schema.Integer(1, 65535),
    "enable_node_exporter": schema.Boolean(),
    "setup_script": schema.Text(),
}

SERVICE_FIELDS = {"init_script": schema.Text()}

CLIENT_FIELDS = {
    "duration": schema.Integer(1),
    "sweep_parallelism": schema.Integer(1, 1000),
    "target_service": schema.Mapping(
        {
            "name": schema.Text(pattern=NAME, hint="a service name"),
            "port": schema.Integer(1, 65535),
            "health_check_endpoint": schema.Text(),
        }
    ),
    "target_endpoint": schema.Text(pattern=r"https?://[^\s/?#]+(?::\d+)?(?:/\S*)?", hint="an http(s) URL with a host"),
    "script": schema.Mapping({"name": schema.Text(), "local_path": schema.Text(), "remote_path": schema.Text()}),
    "output": schema.Mapping({"file": schema.Text(), "shared_dir": schema.Text()}),
}

TOP_LEVEL = ("service", "client", "monitoring")


def recipe_id(text):
    """The default job id: the first 8 hex digits of the recipe's SHA-256.

    >>> recipe_id("service:\\n  name: redis\\n")
    'c44d4d0c'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _block_spec(role, kind):
    fields = dict(COMMON_FIELDS)
    if role == "service":
        fields.update(SERVICE_FIELDS)
        if kind is not None:
            fields.update(kind.fields)
    else:
        fields.update(CLIENT_FIELDS)
        fields["parameters"] = parameters_spec(kind) if kind is not None else _AnyMapping()
        # parameter -> list of values: one array task per combination (as several values in parameters:)
        fields["sweep"] = sweep_spec(kind) if kind is not None else _AnyMapping()
    return schema.Mapping(fields, required=("name",))


class _AnyMapping:
    """Accepts any mapping: used for a block whose kind is unknown, so its other fields are still checked."""

    def read(self, node, path):
        return {}, []


def _env_settings(kind, node, path):
    """Kind fields the seed sets through environment variables, validated like the fields themselves
    (read from the nodes: checked whatever else is wrong with the block)."""
    settings, problems = {}, []
    env = schema.child(node, "environment")
    given = set(schema.keys_of(node))
    for name in schema.keys_of(env):
        field_name = kind.env_fields.get(name)
        if field_name is None or field_name in given:
            continue
        value, found = kind.fields[field_name].read(schema.child(env, name), "%s.environment.%s" % (path, name))
        problems.extend(found)
        if not found:
            settings[field_name] = value
    return settings, problems


def _problems(filename, items):
    return [Problem(filename, line, field, message) for line, field, message in items]


def _document(text, filename):
    """The parsed document, or a ``RecipeError`` for text that is not YAML."""
    try:
        return schema.read_document(text)
    except Exception as error:  # strictyaml and ruamel raise many types, all with a mark
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        message = getattr(error, "problem", None) or str(error).strip().splitlines()[-1]
        raise RecipeError([Problem(filename, line, "", "not a valid recipe: %s" % message)]) from None


def _block(document, filename, part):
    """``(role, block name, the file's service: or client:, block node, problems)``; a ``RecipeError``
    when there is no block to read at all."""
    if not document.is_mapping():
        raise RecipeError([Problem(filename, 1, "", "a recipe is a mapping with a service: or client: block")])
    keys = schema.keys_of(document)
    problems = [
        Problem(filename, schema.key_line(document, key), key, "unknown top-level block (expected service: or client:)")
        for key in keys
        if key not in TOP_LEVEL
    ]
    roles = [k for k in keys if k in ("service", "client")]
    if len(roles) != 1:
        message = "has both service: and client:" if roles else "has neither service: nor client:"
        raise RecipeError(problems + [Problem(filename, 1, "", "the recipe %s" % message)])
    wanted = part or roles[0]
    if wanted not in keys:
        raise RecipeError(problems + [Problem(filename, 1, wanted, "the recipe has no %s: block" % wanted)])
    node = document[wanted]
    if not node.is_mapping():
        raise RecipeError(problems + [Problem(filename, schema.line_of(node), wanted, "expected a mapping of fields")])
    return ("client" if wanted == "client" else "service"), wanted, roles[0], node, problems


def _option_problems(filename, options, block, node, path):
    """``(site profile or None, runtime, problems)`` of the command line's options (and the site's pull policy)."""
    site, runtime, job_id, run_dir, endpoints_dir, python = options
    problems, profile = [], None
    try:
        profile = resolve_site(site, (sites_dir(),))
    except RecipeError as error:
        problems.extend(error.problems)
    runtime = runtime or (profile.runtime if profile else "apptainer")
    if profile and profile.pull == "never" and block.get("container", {}).get("force_rebuild"):
        problems.append(Problem(filename, schema.key_line(schema.child(node, "container"), "force_rebuild"), path + ".container.force_rebuild",
                                "site %s lets no job fetch or build an image (pull: never): rebuild it with orch pull --force" % profile.name))
    mounts = block.get("container", {}).get("bind_mounts", ())
    if runtime == "charliecloud" and any(mount.count(":") > 1 for mount in mounts):
        # ch-run (0.31) binds read-write and takes no options: ":ro" would be silently dropped
        problems.append(Problem(filename, schema.key_line(schema.child(node, "container"), "bind_mounts"), path + ".container.bind_mounts",
                                "charliecloud binds take no options (src[:dst] only): drop them, or use --runtime apptainer"))
    if job_id is not None and not re.fullmatch(NAME, job_id):
        problems.append(Problem(filename, 0, "--id", "%r: use letters, digits and _ . - only" % job_id))
    for option, value in (("--run-dir", run_dir), ("--endpoints-dir", endpoints_dir), ("--python", python)):
        if value is not None and not re.fullmatch(SAFE_PATH, value):
            problems.append(Problem(filename, 0, option, "%r: use letters, digits and _ . / + - only (it goes into #SBATCH lines)" % value))
    if runtime not in RUNTIME_NAMES:
        problems.append(Problem(filename, 0, "--runtime", "unknown runtime %r (known: %s)" % (runtime, ", ".join(RUNTIME_NAMES))))
    return profile, runtime, problems


def parse_job(text, filename="<recipe>", *, site="meluxina", runtime=None, job_id=None, run_dir=None,
              endpoints_dir=None, part=None, kinds=None, python=None, whole=True):
    """Return the ``Job`` a recipe's text describes, or raise ``RecipeError`` with every problem.

    Every check runs whatever else is wrong with the file (the field types, the rules across
    fields, the command line's options), so one run reports all of a file's problems.

    + site: a site profile: its name (``meluxina``, ``local``, or one in ``~/.orch/sites``), its file, or a ``Site``
    + runtime: ``apptainer``, ``charliecloud`` or ``host`` (default: the site's)
    + job_id: the id in the job name and run directory (default: from the text)
    + run_dir / endpoints_dir: override the site's defaults
    + part: ``monitoring`` selects the seed's ``monitoring:`` block
    + kinds: a kinds table with custom kinds (``orch.kinds.register``)
    + python: the interpreter that runs a client's load generator on the node (the site's wins;
      default ``python3`` from the node's PATH)
    + whole: check the file's other block too (``monitoring:``, or the rest when ``part`` selects it)
    """
    table = KINDS if kinds is None else kinds
    document = _document(text, filename)
    role, wanted, main, node, problems = _block(document, filename, part)

    name_node = schema.child(node, "name")
    kind = None
    if name_node is not None and name_node.is_scalar():
        kind = kind_named(name_node.data, table)
        if kind is None or kind.role != role:
            known = sorted(k.name for k in table.values() if k.role == role)
            problems.append(Problem(filename, schema.line_of(name_node), "%s.name" % wanted,
                                    "unknown %s kind %r (known: %s)" % (role, name_node.data, ", ".join(known))))
            kind = None
    block, found = _block_spec(role, kind).read(node, wanted)
    found += structure_problems(role, kind, node, wanted)
    if part == "monitoring" and kind is not None and kind.name != "prometheus":
        found.append((schema.line_of(name_node), "monitoring.name", "the monitoring: block is a prometheus"))
    # the file is checked whole: the seed's companion monitoring: block with the rest, though rendered
    # only on request, and the rest with it when it is
    other = main if part == "monitoring" else "monitoring"
    if whole and other in schema.keys_of(document):
        try:
            parse_job(text, filename, site=site, runtime=runtime, part=None if part else "monitoring", kinds=kinds, whole=False)
        except RecipeError as error:
            problems.extend(p for p in error.problems if p.field.startswith(other))
    settings, parameters, target = {}, {}, None
    if kind is not None:
        env_settings, more = _env_settings(kind, node, wanted)
        settings = dict(env_settings, **{name: block[name] for name in kind.fields if role == "service" and name in block})
        found += more
        if role == "client":
            parameters, more = client_parameters(kind, block, node, wanted)
            found += more
            target, more = recipe_target(kind, block, node, wanted)
            found += more
        found += value_problems(role, kind, block, settings, node, wanted)
    site_profile, runtime, more = _option_problems(filename, (site, runtime, job_id, run_dir, endpoints_dir, python), block, node, wanted)
    problems.extend(_problems(filename, found) + more)
    if kind is None or problems:
        raise RecipeError(problems)
    return _job(text, role, kind, block, settings, parameters, target, site_profile,
                runtime=runtime, job_id=job_id, run_dir=run_dir, endpoints_dir=endpoints_dir, python=python)


def _environment(kind, block, parameters):
    """The recipe's variables, in order; those orch takes literally (passwords, the kind's own settings) as ``Literal``."""
    literal = literal_names(kind, parameters)
    return tuple((name, Literal(value) if name in literal or SECRET_ENV.search(name) else value)
                 for name, value in block.get("environment", ()))


def _job(text, role, kind, block, settings, parameters, target, site_profile, *, runtime, job_id, run_dir, endpoints_dir, python):
    output = block.get("output", {})
    wanted_files = (fixed(parameters).get("output_file"), output.get("file"))
    result_files = tuple(dict.fromkeys(path for path in wanted_files if path))
    the_id = job_id or recipe_id(text)
    job_name = "%s_%s" % (block["name"], the_id)
    container = block.get("container", {})
    health = block.get("health_check", {})
    # what the kind's fields mount in its image (prometheus's storage_path); the host runtime has none
    binds = tuple(container.get("bind_mounts", ())) + (tuple(kind.binds(settings)) if runtime != "host" else ())
    return Job(
        role=role,
        kind=kind.name,
        name=block["name"],
        id=the_id,
        description=block.get("description"),
        container_image=block.get("container_image"),
        command=block.get("command"),
        args=block.get("args"),
        container=Container(
            docker_source=container.get("docker_source"),
            image_path=container.get("image_path"),
            build_commands=container.get("build_commands", ()),
            force_rebuild=container.get("force_rebuild", False),
            bind_mounts=binds,
        ),
        resources=Resources(**block.get("resources", {})),
        environment=_environment(kind, block, parameters),
        ports=block.get("ports", ()),
        health=HealthCheck(**{k: v for k, v in health.items()}),
        cadvisor=block.get("enable_cadvisor", False),
        cadvisor_port=block.get("cadvisor_port", 8080),
        node_exporter=block.get("enable_node_exporter", False),
        setup_script=block.get("setup_script"),
        init_script=block.get("init_script"),
        settings=frozen(settings),
        duration=block.get("duration"),
        parameters=pmap(parameters),
        sweep_parallelism=block.get("sweep_parallelism", 1),
        target=target,
        result_files=result_files,
        result_dir=output.get("shared_dir") or None,
        site=site_profile,
        runtime=runtime,
        driver_python=site_profile.python or python or "python3",
        run_dir=run_dir or "%s/%s" % (site_profile.runs_root, job_name),
        endpoints_dir=endpoints_dir or "%s/endpoints" % site_profile.runs_root,
    )


def read_recipe(path, what="recipe"):
    """The text of the recipe (or experiment) file at ``path``; a ``RecipeError`` that names it when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError([Problem(str(path), 0, "", "cannot read the %s: %s" % (what, getattr(error, "strerror", None) or error))]) from None


def load_job(path, **options):
    """Read the recipe file at ``path`` and return its ``Job`` (see ``parse_job``)."""
    return parse_job(read_recipe(path), str(path), **options)
