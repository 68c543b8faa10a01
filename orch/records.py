"""Immutable records: what a recipe says, as data.

Records are built once, at the edge, by ``orch.recipe``; section functions
read them and never change them (``.set`` returns a new record).
"""
import re

from pyrsistent import PClass, field, pmap, pvector, pvector_field

__all__ = (
    "Resources",
    "Container",
    "HealthCheck",
    "Target",
    "Site",
    "Job",
    "RESOURCE_FLAGS",
    "NAME",
    "SAFE_PATH",
)

# what a name or a path must look like before it may reach a script (recipes are checked against the same)
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
SAFE_PATH = r"[A-Za-z0-9_./+-]+"


def matching(pattern, what):
    """A pyrsistent invariant: the value matches ``pattern`` whole.

    >>> matching(NAME, "a name")("redis; rm -rf /")
    (False, "a name: 'redis; rm -rf /' is not allowed (letters, digits and _ . - only)")
    """
    allowed = "letters, digits and _ . / + - only" if pattern == SAFE_PATH else "letters, digits and _ . - only"
    return lambda value: (re.fullmatch(pattern, value) is not None, "%s: %r is not allowed (%s)" % (what, value, allowed))


OPTIONAL_INT = (int, type(None))
OPTIONAL_STR = (str, type(None))

# recipe field -> sbatch option, in the order the header prints them
RESOURCE_FLAGS = (
    ("nodes", "nodes"),
    ("ntasks", "ntasks"),
    ("ntasks_per_node", "ntasks-per-node"),
    ("cpus_per_task", "cpus-per-task"),
    ("mem", "mem"),
    ("time", "time"),
    ("partition", "partition"),
    ("qos", "qos"),
    ("gres", "gres"),
    ("account", "account"),
)


class Resources(PClass):
    nodes = field(type=OPTIONAL_INT, initial=None)
    ntasks = field(type=OPTIONAL_INT, initial=None)
    ntasks_per_node = field(type=OPTIONAL_INT, initial=None)
    cpus_per_task = field(type=OPTIONAL_INT, initial=None)
    mem = field(type=OPTIONAL_STR, initial=None)
    time = field(type=OPTIONAL_STR, initial=None)
    partition = field(type=OPTIONAL_STR, initial=None)
    qos = field(type=OPTIONAL_STR, initial=None)
    gres = field(type=OPTIONAL_STR, initial=None)
    account = field(type=OPTIONAL_STR, initial=None)


class Container(PClass):
    docker_source = field(type=OPTIONAL_STR, initial=None)
    image_path = field(type=OPTIONAL_STR, initial=None)
    build_commands = pvector_field(str)
    force_rebuild = field(type=bool, initial=False)
    bind_mounts = pvector_field(str)


class HealthCheck(PClass):
    endpoint = field(type=OPTIONAL_STR, initial=None)
    timeout = field(type=int, initial=60)
    retries = field(type=int, initial=10)
    interval = field(type=int, initial=5)


class Target(PClass):
    """The service a client loads: by name (found through endpoint files) or by URL."""

    name = field(type=OPTIONAL_STR, initial=None)
    port = field(type=OPTIONAL_INT, initial=None)
    health_check_endpoint = field(type=OPTIONAL_STR, initial=None)
    # a URL given instead of a name (``target_endpoint``), split at load time
    endpoint = field(type=OPTIONAL_STR, initial=None)
    host = field(type=OPTIONAL_STR, initial=None)
    scheme = field(type=str, initial="http")
    # the target's kind and the HTTP paths that tell it is up, any of them (none: a TCP connect)
    kind = field(type=OPTIONAL_STR, initial=None)
    health_paths = field(type=tuple, initial=())
    wait = field(type=int, initial=300)


class Site(PClass):
    """What differs between clusters."""

    name = field(type=str, mandatory=True)
    modules = pvector_field(str)
    purge_modules = field(type=bool, initial=False)
    account = field(type=OPTIONAL_STR, initial=None)
    partition = field(type=OPTIONAL_STR, initial=None)
    qos = field(type=OPTIONAL_STR, initial=None)
    runs_root = field(type=str, initial="orch-runs")
    container_dir = field(type=str, initial="$HOME/containers")
    # where services listen, and the address clients are told (None: the node's hostname)
    bind_address = field(type=str, initial="0.0.0.0")
    advertise_host = field(type=OPTIONAL_STR, initial=None)
    login = field(type=OPTIONAL_STR, initial=None)
    login_port = field(type=OPTIONAL_INT, initial=None)
    # the Python that runs a client's load generator on the node (None: the one that submitted it),
    # and the module lines it needs there
    python = field(type=OPTIONAL_STR, initial=None)
    python_modules = pvector_field(str)


class Job(PClass):
    """One SLURM job: a service or a client, with where and how it runs."""

    role = field(type=str, mandatory=True, invariant=lambda r: (r in ("service", "client"), "role"))
    # names reach the script unquoted in places (job name, log lines, file names): checked here,
    # so that a record built in code cannot carry what a recipe could not
    kind = field(type=str, mandatory=True, invariant=matching(NAME, "kind"))
    name = field(type=str, mandatory=True, invariant=matching(NAME, "name"))
    id = field(type=str, mandatory=True, invariant=matching(NAME, "id"))
    description = field(type=OPTIONAL_STR, initial=None)
    container_image = field(type=OPTIONAL_STR, initial=None)
    command = field(type=OPTIONAL_STR, initial=None)
    # None: the kind's own arguments; a tuple (even empty): exactly these
    args = field(type=(tuple, type(None)), initial=None)
    container = field(type=Container, initial=Container())
    resources = field(type=Resources, initial=Resources())
    # (name, value) pairs in recipe order: later values may refer to earlier ones
    environment = pvector_field(tuple)
    ports = pvector_field(int)
    health = field(type=HealthCheck, initial=HealthCheck())
    cadvisor = field(type=bool, initial=False)
    cadvisor_port = field(type=int, initial=8080)
    # a node_exporter beside the job (its port chosen at run time), published for Prometheus
    node_exporter = field(type=bool, initial=False)
    # the experiment run this job belongs to: a label on every scrape target it publishes
    experiment = field(type=OPTIONAL_STR, initial=None)
    setup_script = field(type=OPTIONAL_STR, initial=None)
    init_script = field(type=OPTIONAL_STR, initial=None)
    # the kind's own fields (model, persistence, root_password, ...)
    settings = field(initial=pmap())
    # clients
    duration = field(type=OPTIONAL_INT, initial=None)
    parameters = field(initial=pmap())
    target = field(type=(Target, type(None)), initial=None)
    # the seed's script: {name, local_path, remote_path} (orch's load generator runs in its place)
    script = field(initial=pmap())
    # copies of the results: {file, shared_dir}
    output = field(initial=pmap())
    # where and how
    site = field(type=Site, mandatory=True)
    runtime = field(type=str, initial="apptainer")
    run_dir = field(type=str, mandatory=True, invariant=matching(SAFE_PATH, "run_dir"))
    endpoints_dir = field(type=str, mandatory=True, invariant=matching(SAFE_PATH, "endpoints_dir"))
    grace = field(type=int, initial=30)
    # array tasks of a sweep that may run at once (1: points never share the service)
    sweep_parallelism = field(type=int, initial=1)
    # the Python that runs a client's load generator (orch's own code) on the node, outside any image
    driver_python = field(type=str, initial="python3", invariant=matching(SAFE_PATH, "driver_python"))

    @property
    def job_name(self):
        return "%s_%s" % (self.name, self.id)


def frozen(value):
    """Return ``value`` with lists and dicts made persistent, recursively.

    >>> frozen({"a": [1, {"b": 2}]})["a"][1]["b"]
    2
    """
    if isinstance(value, dict):
        return pmap({k: frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return pvector(frozen(v) for v in value)
    return value
