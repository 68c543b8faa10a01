"""orch's errors: one root, leaves that are also the builtin they resemble."""

__all__ = ("OrchError", "RecipeError", "Problem")


class OrchError(Exception):
    """Every error orch raises on purpose."""


class Problem(tuple):
    """One thing wrong with a recipe: ``(file, line, field, message)``."""

    __slots__ = ()

    def __new__(cls, file, line, field, message):
        return tuple.__new__(cls, (file, line, field, message))

    file = property(lambda self: self[0])
    line = property(lambda self: self[1])
    field = property(lambda self: self[2])
    message = property(lambda self: self[3])

    def __str__(self):
        where = "%s:%d" % (self.file, self.line) if self.line else str(self.file)
        return "%s: %s: %s" % (where, self.field, self.message) if self.field else "%s: %s" % (where, self.message)


class RecipeError(OrchError, ValueError):
    """A recipe that cannot be used; ``problems`` lists every problem found, in line order."""

    def __init__(self, problems):
        self.problems = tuple(sorted(problems, key=lambda p: (str(p.file), p.line, p.field)))
        super().__init__("\n".join(str(p) for p in self.problems))
