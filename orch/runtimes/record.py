"""The shape every runtime has (see ``orch.runtimes``)."""
from pyrsistent import PClass, field

__all__ = ("Runtime",)


class Runtime(PClass):
    name = field(type=str, mandatory=True)
    image = field(mandatory=True)
    wrap = field(mandatory=True)
    export = field(mandatory=True)
