"""orch's errors: one root, and each error knows the exit status the command line gives for it.

| error | exit | when |
|---|---|---|
| ``RecipeError``, ``UsageError``, ``NotFound`` | 2 | a bad recipe, bad usage, an unknown run: nothing submitted |
| ``LoginUnreachable`` | 3 | ssh could not reach the login node |
| ``SubmissionError`` | 4 | sbatch refused the job |
| every other ``OrchError`` | 1 | a scheduler error, a wait that failed or timed out, ... |
"""

__all__ = (
    "OrchError", "RecipeError", "Problem", "UsageError", "NotFound", "LoginUnreachable", "SubmissionError",
    "SchedulerError", "WaitFailed",
)


class OrchError(Exception):
    """Every error orch raises on purpose."""

    exit_code = 1


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

    exit_code = 2

    def __init__(self, problems):
        self.problems = tuple(sorted(problems, key=lambda p: (str(p.file), p.line, p.field)))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(OrchError):
    """Bad command-line input."""

    exit_code = 2


class NotFound(OrchError, LookupError):
    """No run with that id."""

    exit_code = 2


class LoginUnreachable(OrchError):
    """The login node could not be reached over ssh; the message is ssh's own."""

    exit_code = 3


class SubmissionError(OrchError):
    """sbatch refused the job; the message is SLURM's own."""

    exit_code = 4


class SchedulerError(OrchError):
    """squeue, scontrol or scancel failed."""


class WaitFailed(OrchError):
    """The run ended somewhere else than the state waited for, or the wait timed out."""
