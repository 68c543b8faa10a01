"""The ``#SBATCH`` header: job name, logs, signal, the recipe's resources (the site fills the gaps), the sweep's array."""
from orch import __version__
from orch.quoting import sbatch_flag
from orch.records import RESOURCE_FLAGS
from orch.runtimes import gpu_requested
from orch.sweep import combinations

__all__ = ("header", "resource_values", "array_flags")


def resource_values(job):
    """``(sbatch option, value)`` for every set resource; the site fills account/partition/qos gaps.

    A job that asks for a GPU and names no partition gets the site's GPU partition.
    """
    resources = job.resources
    partition = (job.site.gpu_partition if gpu_requested(job) else None) or job.site.partition
    fallback = {"account": job.site.account, "partition": partition, "qos": job.site.qos}
    values = []
    for field_name, option in RESOURCE_FLAGS:
        value = getattr(resources, field_name)
        if value is None:
            value = fallback.get(field_name)
        if value is not None:
            values.append((option, value))
    return tuple(values)


def header(job):
    """``#!/bin/bash`` and the ``#SBATCH`` directives."""
    array = array_flags(job)
    # an array's tasks each get their own log: %A is the array's job id, %a the task
    logs = "%s/logs/%%x-%s" % (job.run_dir, "%A_%a" if array else "%j")
    lines = [
        "#!/bin/bash",
        sbatch_flag("job-name", job.job_name),
        sbatch_flag("output", logs + ".out"),
        sbatch_flag("error", logs + ".err"),
        sbatch_flag("signal", "B:TERM@%d" % job.grace),
    ]
    lines.extend(sbatch_flag(option, value) for option, value in resource_values(job))
    lines.extend(array)
    lines.append("# rendered by orch %s: %s %s (%s runtime, %s site)" % (__version__, job.role, job.kind, job.runtime, job.site.name))
    return tuple(lines)


def array_flags(job):
    if not job.parameters:
        return ()
    combos = combinations(job)
    if len(combos) <= 1:
        return ()
    return (sbatch_flag("array", "0-%d%%%d" % (len(combos) - 1, job.sweep_parallelism)),)
