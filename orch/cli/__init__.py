"""The command line: ``orch render | validate | list | submit | status | wait | logs | cancel | results | run | stop | report | tunnel``.

Errors are one line each on stderr, with the exit status the error carries
(``orch.errors``): 2 for a bad recipe or bad usage, 3 when the login node
cannot be reached, 4 when sbatch refuses a job, 1 for the rest (a wait that
failed or timed out). Nothing is printed on stdout unless the whole command
succeeded, so ``orch render x.yaml | sbatch`` never submits half a script.

- ``parser``: the one argument parser, its option groups shared by the commands that take them
- ``recipes``: render, validate, list
- ``jobs``: submit, status, wait, logs, cancel, results, report
- ``experiments``: run, stop, tunnel
- ``show``: how records read on the terminal (pure)
"""
import os
import sys

__all__ = ("main",)


def main(argv=None):
    from orch.cli.parser import parser
    from orch.errors import OrchError, RecipeError

    args = parser().parse_args(argv)
    try:
        code = args.run(args)
        # what is still buffered goes now, while a closed pipe can still be answered quietly
        sys.stdout.flush()
        return code
    except BrokenPipeError as error:
        if not _stdout_gone():
            print("orch: %s" % error, file=sys.stderr)
            return 1
        # the reader went away (orch render ... | head -1): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except RecipeError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return error.exit_code
    except OrchError as error:
        print("orch: %s" % error, file=sys.stderr)
        return error.exit_code
    except OSError as error:
        # a file or directory orch needs (ORCH_HOME, the output) that the system refused
        print("orch: %s" % error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _stdout_gone():
    """True when nobody reads orch's stdout any more (a pipe whose reader has closed it)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False
