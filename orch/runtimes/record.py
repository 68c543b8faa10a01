"""The shape every runtime has (see ``orch.runtimes``)."""
from pyrsistent import PClass, field

__all__ = ("Runtime",)


class Runtime(PClass):
    name = field(type=str, mandatory=True)
    image = field(mandatory=True)
    wrap = field(mandatory=True)
    # the bash (run as ``bash -c SNIPPET orch-env COMMAND...``) that hands the job's environment, kept in the
    # job's shell as ORCH_ENV_<NAME> (orch.sections.environment), to COMMAND the runtime's way, then runs it
    environment = field(type=str, mandatory=True)
