"""The scheduler: sbatch, squeue, sacct, scontrol and scancel run for real (their command lines: ``orch.argv``).

Functions return records and never print; failures raise ``SubmissionError``
(sbatch said no), ``SchedulerError`` (the others) or ``LoginUnreachable``
(ssh), each carrying the tool's own words. ``runner`` arguments let tests pass
a fake in place of the real process runner.
"""
from orch.argv import reason_line, parse_job_id, sacct_argv, sbatch_argv, scancel_argv, scontrol_argv, squeue_argv
from orch.effects.process import run
from orch.errors import LoginUnreachable, SchedulerError, SubmissionError
from orch.lifecycle import parse_sacct, parse_scontrol, parse_squeue

__all__ = ("submit", "queue", "accounted_job", "show_job", "cancel", "remote_home")


def submit(script, *, options=(), remote=None, runner=run):
    """Submit ``script`` (on sbatch's stdin, so nothing is uploaded); return the SLURM job id."""
    result = runner(sbatch_argv(options), input=script, remote=remote)
    job_id = parse_job_id(result.stdout) if result.exit_code == 0 else None
    if job_id is None:
        words = reason_line(result.stderr) or reason_line(result.stdout) or "exit status %d" % result.exit_code
        raise SubmissionError("sbatch: %s" % words)
    return job_id


def queue(*, remote=None, runner=run):
    """``{job id: SlurmJob}`` for this user's jobs that SLURM still knows (finished ones too)."""
    result = runner(squeue_argv(), remote=remote)
    if result.exit_code != 0:
        raise SchedulerError("squeue: %s" % (reason_line(result.stderr) or "exit status %d" % result.exit_code))
    return parse_squeue(result.stdout)


def accounted_job(job_id, *, remote=None, runner=run):
    """``SlurmJob`` from ``sacct`` where accounting exists, else from ``scontrol``; None when neither knows it.

    Asked only for jobs that squeue no longer lists: finished ones, past ``MinJobAge``.
    """
    result = runner(sacct_argv(job_id), remote=remote)
    if result.exit_code == 0:
        job = parse_sacct(result.stdout, str(job_id))
        if job is not None:
            return job
    # no accounting ("Slurm accounting storage is disabled"): the controller may still know it
    return show_job(job_id, remote=remote, runner=runner)


def show_job(job_id, *, remote=None, runner=run):
    """``SlurmJob`` from ``scontrol show job``, or None once SLURM has forgotten the job."""
    result = runner(scontrol_argv(job_id), remote=remote)
    return parse_scontrol(result.stdout) if result.exit_code == 0 else None


def cancel(job_ids, *, remote=None, runner=run):
    """scancel the jobs; SLURM's complaint (if any) is raised."""
    if not job_ids:
        return
    result = runner(scancel_argv(job_ids), remote=remote)
    if result.exit_code != 0:
        raise SchedulerError("scancel: %s" % (reason_line(result.stderr) or "exit status %d" % result.exit_code))


def remote_home(remote, *, runner=run):
    """The login node's home directory (run directories live under it)."""
    result = runner(("sh", "-c", 'printf %s "$HOME"'), remote=remote)
    home = result.stdout.strip()
    if result.exit_code != 0 or not home.startswith("/"):
        raise LoginUnreachable("ssh %s: cannot read the home directory" % remote.destination)
    return home
