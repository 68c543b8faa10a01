"""What the four client kinds share: a load generator, its flags, and the parameters table."""
from orch import schema
from orch.kinds import Kind
from orch.quoting import Literal, Raw
from orch.sections import client_sections
from orch.sweep import fixed

__all__ = ("client_kind", "flag_words", "password_environment", "Each", "COMMON_PARAMETERS")

# seed parameters orch accepts and handles itself rather than passing on
COMMON_PARAMETERS = {
    "output_file": schema.Text(),  # results always go to the run's results/ directory
    "wait_for_service": schema.Integer(1),  # how long to wait for the target
    "parametric_mode": schema.Boolean(),  # a sweep is any parameter with several values
}


def password_environment(variable):
    """``job -> pairs``: the recipe's ``password`` parameter as ``variable`` in the load generator's environment,
    taken literally, so it stays off the rendered command line and out of the results."""

    def pairs(job):
        password = fixed(job.parameters or {}).get("password")
        return ((variable, Literal(password)),) if password else ()

    return pairs


class Each(str):
    """An option given once per value, as ``--option=value``, the value taken literally (free text: prompts)."""

    __slots__ = ()


def flag_words(flags, values):
    """Words for one combination: ``flags`` maps parameter -> option; True booleans give bare options.

    >>> flag_words({"clients": "--clients", "csv": "--csv"}, {"clients": 50, "csv": True, "x": 1})
    ('--clients', '50', '--csv')
    >>> flag_words({"prompts": Each("--prompt")}, {"prompts": ("a, b", "$HOME")})
    ('--prompt=a, b', '--prompt=$HOME')
    """
    words = []
    for name, option in flags.items():
        if name not in values:
            continue
        value = values[name]
        if isinstance(option, Each):
            words.extend(Literal("%s=%s" % (option, v)) for v in (value if isinstance(value, tuple) else (value,)))
        elif value is True:
            words.append(option)
        elif value is False:
            continue
        elif isinstance(value, tuple):
            words.extend((option, ",".join(str(v) for v in value)))
        else:
            words.extend((option, str(value)))
    return tuple(words)


def client_kind(name, target, summary, parameters, flags, aliases=(), docker_source=None, env=None, program=None,
                check=None, base_url=False, reads=None):
    """A client kind whose load generator is orch's ``orch.clients.<name>``, or a native tool run as it is.

    + docker_source: the image of the native tool the load generator drives (redis-benchmark,
      sysbench); None for a load generator written in Python alone, which needs no image
    + env: ``job -> pairs`` of environment variables the load generator gets (the recipe's own win)
    + program: ``job -> words`` of a native tool (in the client's image, through the runtime) that needs
      no wrapper of orch's: its flags follow, and no ``--output`` is added (``ORCH_RESULT`` is in its environment)
    + check: ``parameters -> [(parameter, message)]``, rules across parameters (``Kind.check``)
    + base_url: the load generator speaks HTTP and takes the target's base URL, ``--url "$TARGET_URL"``
      (an https ``target_endpoint`` with a path reaches it whole, not as host and port alone)
    + reads: ``parameters -> names`` of environment variables the load generator reads (``Kind.reads_env``)

    orch's load generator runs on the node, with the Python the job was submitted from
    (``Job.driver_python``), outside the image; only its native tool runs inside.
    """
    if program is not None:
        return _kind(name, target, summary, parameters, flags, aliases, docker_source, env, program, None, None, check, reads)

    def driver(job):
        return (
            Raw('"$ORCH_PYTHON"'), "-m", "orch.clients." + name,
            "--host", Raw('"$TARGET_HOST"'), "--port", Raw('"$TARGET_PORT"'),
            "--duration", str(job.duration or 60),
        ) + (("--url", Raw('"$TARGET_URL"')) if base_url else ())

    return _kind(name, target, summary, parameters, flags, aliases, docker_source, env, driver, ("--output",),
                 "orch.clients." + name, check, reads)


def _kind(name, target, summary, parameters, flags, aliases, docker_source, env, program, output, module, check, reads):
    def arguments(job, values):
        return flag_words(flags, values)

    return Kind(
        name=name,
        role="client",
        summary=summary,
        fields=dict(COMMON_PARAMETERS, **parameters),
        aliases=dict(aliases),
        docker_source=docker_source,
        target=target,
        check=check,
        reads_env=reads or (lambda parameters: ()),
        passed=frozenset(flags),
        sections=client_sections(program, arguments, docker_source, env=env, output=output, driver=module),
    )
