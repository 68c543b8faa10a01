"""Hypothesis strategies: valid recipes (as YAML text and as the data behind it) and hostile words."""
import json

from hypothesis import strategies as st

from orch import schema
from orch.kinds import CLIENT_KINDS, SERVICE_KINDS

# values that would do something if a shell ever interpreted them
HOSTILE = (
    "$(touch /tmp/orch-pwned)",
    "`touch /tmp/orch-pwned`",
    "'; touch /tmp/orch-pwned; '",
    '"; touch /tmp/orch-pwned; "',
    "a\nb",
    "line1\ntouch /tmp/orch-pwned",
    "*",
    "/etc/*",
    "~root",
    "a b  c",
    "x && touch /tmp/orch-pwned",
    "| touch /tmp/orch-pwned",
    "${IFS}",
    "$((1+1))",
    "\\",
    "'\";&&e-$ èрт🚒♞中片-j",  # virtualenv's special name
    "ORCH_EOF",
    "-n",
    "",
)

PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85\u2028\u2029\ufeff") | st.sampled_from("\n\t")
# random text carries no "$": references come only from the lists here, whose values the tests know
texts = st.text(PRINTABLE.filter(lambda c: c != "$"), max_size=24) | st.sampled_from(HOSTILE)
# $NAME references, which expand at run time by design
references = st.sampled_from(("$ORCH_TEST_VAR", "${ORCH_TEST_VAR}", "$ORCH_UNSET_VAR", "$HOME/x"))
hostile_values = st.lists(texts | references, min_size=1, max_size=3).map("".join)

env_names = st.from_regex(r"T_[A-Z0-9_]{1,8}", fullmatch=True)
plain_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
times = st.sampled_from(("30", "00:30:00", "1-00:00:00", "2-12", "45:00", "UNLIMITED"))
mems = st.builds(lambda n, u: "%d%s" % (n, u), st.integers(1, 4096), st.sampled_from(("", "M", "G", "GB", "gb", "K")))
gres = st.sampled_from(("gpu:1", "gpu:a100:2", "gpu:4", "shard:1", "mps:50"))
host_lists = st.sampled_from(("vm", "node[1-3],gpu01", "n[01-04,7]", "rack[0-1]-node[0-3]"))
constraints = st.sampled_from(("gpu", "gpu&nvme", "[rack1|rack2]", "[(a|b)*1&c*2]", "intel|amd", "(a&b)*2&c"))


def yaml_scalar(value):
    """A YAML double-quoted scalar: JSON's string syntax is a subset of it."""
    return json.dumps(value, ensure_ascii=False)


@st.composite
def resources(draw):
    fields = {
        "nodes": st.integers(1, 64),
        "ntasks": st.integers(1, 256),
        "ntasks_per_node": st.integers(1, 128),
        "cpus_per_task": st.integers(1, 128),
        "mem": mems,
        "time": times,
        "partition": plain_names,
        "qos": plain_names,
        "gres": gres,
        "account": st.from_regex(r"p[0-9]{6}", fullmatch=True),
        "nodelist": host_lists,
        "exclude": st.just("spare[1-2]"),  # never one of host_lists' names: a node both wanted and excluded is refused
        "constraint": constraints,
    }
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True))
    return {name: draw(fields[name]) for name in chosen}


@st.composite
def service_recipes(draw, kinds=tuple(sorted(kind.name for kind in SERVICE_KINDS))):
    """(yaml text, data) of a valid service recipe with hostile values wherever values are free text."""
    data = {"name": draw(st.sampled_from(kinds))}
    if draw(st.booleans()):
        data["description"] = draw(hostile_values)
    if draw(st.booleans()):
        data["args"] = draw(st.lists(hostile_values, max_size=3))
    data["resources"] = draw(resources())
    data["environment"] = draw(st.dictionaries(env_names, hostile_values, max_size=3))
    data["ports"] = [draw(st.integers(1, 65535))]
    if draw(st.booleans()):
        data["container"] = {"image_path": draw(hostile_values.filter(bool)), "docker_source": draw(hostile_values.filter(bool))}
    data["enable_cadvisor"] = draw(st.booleans())
    data["enable_node_exporter"] = draw(st.booleans())
    data["health_check"] = {"timeout": draw(st.integers(1, 300)), "retries": draw(st.integers(1, 50)), "interval": draw(st.integers(1, 30))}
    return to_yaml("service", data), data


@st.composite
def client_recipes(draw):
    kind = draw(st.sampled_from(sorted(CLIENT_KINDS, key=lambda k: k.name)))
    numbers = st.lists(st.integers(1, 500), min_size=1, max_size=3, unique=True)
    data = {
        "name": kind.name,
        "resources": draw(resources()),
        "environment": draw(st.dictionaries(env_names, hostile_values, max_size=2)),
        "duration": draw(st.integers(1, 3600)),
        "parameters": {},
        "enable_node_exporter": draw(st.booleans()),
    }
    sweepable = sweepable_numbers(kind)
    if sweepable:
        data["parameters"][draw(st.sampled_from(sweepable))] = draw(numbers)
    return to_yaml("client", data), data


def sweepable_numbers(kind):
    """The kind's parameters that take a list of whole numbers (each value up to 500 allowed): a sweep."""
    return sorted(name for name, spec in kind.fields.items()
                  if isinstance(spec, schema.Numbers) and spec.item.lo <= 1 and (spec.item.hi is None or spec.item.hi >= 500))


def to_yaml(role, data):
    """Recipe text in block style, every scalar double-quoted (numbers plain)."""
    lines = ["%s:" % role]

    def emit(key, value, indent):
        pad = "  " * indent
        if isinstance(value, dict):
            lines.append("%s%s:" % (pad, key))
            if not value:
                lines[-1] += " {}"
                return
            for k, v in value.items():
                emit(k, v, indent + 1)
        elif isinstance(value, list):
            lines.append("%s%s:" % (pad, key))
            if not value:
                lines[-1] += " []"
            for item in value:
                lines.append("%s  - %s" % (pad, scalar(item)))
        else:
            lines.append("%s%s: %s" % (pad, key, scalar(value)))

    def scalar(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        return yaml_scalar(value)

    for key, value in data.items():
        emit(key, value, 1)
    return "\n".join(lines) + "\n"
