"""The Jinja2 baseline for ``bench_render.py``: orch's redis script from a Jinja2 template.

Two ways in, both rendering ``redis.sh.j2`` (next to this file):

+ ``template()`` / ``render(template, job)``: from an already-parsed
  ``orch`` Job record, the fair comparison with ``orch.render_job(job)``
  (the template is compiled once, outside any timing).
+ ``main([recipe])`` (``python benchmarks/jinja_baseline.py RECIPE``): the
  whole job done "the other way" in a fresh process: load the recipe with
  strictyaml (a typed schema), fill defaults and the site profile, render,
  print. It does not import orch's modules (only ``orch/__init__`` for the
  version string, which imports nothing).

The template covers what the redis recipe's record can change on the
apptainer runtime, except the branches listed at the top of the template;
``bench_render.py`` asserts byte-for-byte equality with orch's output, so a
drift on either side fails the benchmark instead of skewing it.
"""
import hashlib
import os
import re
import shlex
import sys
from types import SimpleNamespace

import jinja2

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_FILE = os.path.join(HERE, "redis.sh.j2")

__all__ = ("environment", "template", "render", "job_from_recipe", "main", "TEMPLATE_FILE")

# ----------------------------------------------------------------- filters

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_GPU_GRES = re.compile(r"(?:^|,)gpu(?::|$)")
_BARE = re.compile(r"[\w@%+=:./-]+\Z", re.ASCII)


def _literal_part(text):
    if not text:
        return ""
    quoted = shlex.quote(text)
    return "'%s'" % text if quoted == text and "," in text else quoted


def shell_word(value):
    """One shell word in which only ``$NAME`` / ``${NAME}`` expand (the rule of orch's quoting.word)."""
    text = str(value)
    parts = []
    position = 0
    for match in _VARIABLE.finditer(text):
        parts.append(_literal_part(text[position:match.start()]))
        parts.append('"${%s-}"' % (match.group(1) or match.group(2)))
        position = match.end()
    parts.append(_literal_part(text[position:]))
    return "".join(parts) or "''"


def shell_assign(value):
    """The right-hand side of NAME=value: a bare word is single-quoted (orch's quoting.assignment)."""
    quoted = shell_word(value)
    return "'%s'" % quoted if _BARE.match(quoted) else quoted


def sbatch_value(value):
    """``value`` for an #SBATCH line; refuses anything that could end the line or the directive."""
    text = str(value)
    if not text or any(c in text for c in "\n\r\t #\"'\\"):
        raise ValueError("unsafe #SBATCH value: %r" % text)
    return text


def redis_string(value):
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"%s"' % escaped


def gpu_requested(gres):
    return bool(gres and _GPU_GRES.search(gres))


def environment():
    """The Jinja2 environment: shell text (no autoescape), block lines trimmed, strict undefined."""
    env = jinja2.Environment(
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(sh=shell_word, assign=shell_assign, sbatch=sbatch_value, redis_string=redis_string,
                       literal=shlex.quote)
    env.tests["gpu"] = gpu_requested
    return env


def template(env=None):
    """The compiled template (compile once, render many times)."""
    with open(TEMPLATE_FILE, encoding="utf-8") as handle:
        source = handle.read()
    return (env or environment()).from_string(source)


def _version():
    from orch import __version__  # orch/__init__ imports nothing

    return __version__


def render(compiled, job, version=None):
    """The script for ``job`` (an orch Job record, or the namespace ``job_from_recipe`` builds)."""
    return compiled.render(job=job, version=version or _version())


# ------------------------------------------- the whole job, without orch

# orch's meluxina site profile, as this baseline's own configuration
MELUXINA = {
    "name": "meluxina",
    "modules": {"apptainer": ("Apptainer/1.2.4-GCCcore-12.3.0",)},
    "purge_modules": True,
    "account": "p200981",
    "partition": None,
    "qos": None,
    "runs_root": "orch-runs",
    "image_dir": "$HOME/containers",
    "source": "orch/sites/meluxina.yaml",
    "bind_address": "0.0.0.0",
    "advertise_host": None,
}

RESOURCE_FIELDS = ("nodes", "ntasks", "ntasks_per_node", "cpus_per_task", "mem", "time", "partition", "qos", "gres", "account")


def recipe_schema():
    """A strictyaml schema for a redis service recipe (typed, with the SLURM value patterns)."""
    from strictyaml import Bool, Enum, Int, Map, MapPattern, Optional, Regex, Seq, Str

    plain = Regex(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
    resources = Map(
        {
            Optional("nodes"): Int(),
            Optional("ntasks"): Int(),
            Optional("ntasks_per_node"): Int(),
            Optional("cpus_per_task"): Int(),
            Optional("mem"): Regex(r"\d+(?:[KkMmGgTt][Bb]?)?"),
            Optional("time"): Regex(r"(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|UNLIMITED|INFINITE)"),
            Optional("partition"): plain,
            Optional("qos"): plain,
            Optional("gres"): Str(),
            Optional("account"): plain,
        }
    )
    service = Map(
        {
            "name": Regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"),
            Optional("description"): Str(),
            Optional("container_image"): Str(),
            Optional("command"): Str(),
            Optional("args"): Seq(Str()),
            Optional("persistence"): Enum(["none", "rdb", "aof", "both"]),
            Optional("maxmemory"): Regex(r"\d+(?:[kKmMgG][bB]?|[bB])?"),
            Optional("password"): Str(),
            Optional("container"): Map(
                {
                    Optional("docker_source"): Str(),
                    Optional("image_path"): Str(),
                    Optional("build_commands"): Seq(Str()),
                    Optional("force_rebuild"): Bool(),
                    Optional("bind_mounts"): Seq(Str()),
                }
            ),
            Optional("resources"): resources,
            Optional("environment"): MapPattern(Regex(r"[A-Za-z_][A-Za-z0-9_]*"), Str()),
            Optional("ports"): Seq(Int()),
            Optional("health_check"): Map(
                {
                    Optional("endpoint"): Str(),
                    Optional("timeout"): Int(),
                    Optional("retries"): Int(),
                    Optional("interval"): Int(),
                }
            ),
            Optional("enable_cadvisor"): Bool(),
            Optional("cadvisor_port"): Int(),
            Optional("setup_script"): Str(),
            Optional("init_script"): Str(),
        }
    )
    return Map({"service": service})


def job_from_recipe(text, site=MELUXINA):
    """The values the template reads, as plain attributes, from a redis recipe's text."""
    import strictyaml

    # flow style allowed, as orch allows it (the seed's recipes use it)
    block = strictyaml.dirty_load(text, recipe_schema(), allow_flow_style=True).data["service"]
    job_id = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    job_name = "%s_%s" % (block["name"], job_id)
    environment_pairs = list(block.get("environment", {}).items())
    settings = {}
    for variable, name in (("REDIS_PERSISTENCE", "persistence"), ("REDIS_MAXMEMORY", "maxmemory"), ("REDIS_PASSWORD", "password")):
        value = block.get(name, dict(environment_pairs).get(variable))
        if value is not None:
            settings[name] = value
    container = block.get("container", {})
    health = block.get("health_check", {})
    resources = block.get("resources", {})
    return SimpleNamespace(
        role="service",
        kind="redis",
        name=block["name"],
        id=job_id,
        job_name=job_name,
        description=block.get("description"),
        container_image=block.get("container_image"),
        command=block.get("command"),
        args=block.get("args"),  # None: the kind's own arguments
        container=SimpleNamespace(
            docker_source=container.get("docker_source"),
            image_path=container.get("image_path"),
            build_commands=container.get("build_commands", []),
            force_rebuild=container.get("force_rebuild", False),
            bind_mounts=container.get("bind_mounts", []),
        ),
        resources=SimpleNamespace(**{name: resources.get(name) for name in RESOURCE_FIELDS}),
        environment=environment_pairs,
        ports=block.get("ports", []),
        health=SimpleNamespace(
            endpoint=health.get("endpoint"),
            timeout=health.get("timeout", 60),
            retries=health.get("retries", 10),
            interval=health.get("interval", 5),
        ),
        cadvisor=block.get("enable_cadvisor", False),
        cadvisor_port=block.get("cadvisor_port", 8080),
        setup_script=block.get("setup_script"),
        settings=settings,
        site=SimpleNamespace(**site),
        runtime="apptainer",
        run_dir="%s/%s" % (site["runs_root"], job_name),
        endpoints_dir="%s/endpoints" % site["runs_root"],
        grace=30,
    )


def main(argv=None):
    """Print the script for the recipe file named in ``argv`` (what ``orch render`` does, the Jinja2 way)."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as handle:
        text = handle.read()
    sys.stdout.write(render(template(), job_from_recipe(text)))
    return 0


if __name__ == "__main__":
    sys.path.insert(1, os.path.dirname(HERE))  # the repository, for orch.__version__
    sys.exit(main())
