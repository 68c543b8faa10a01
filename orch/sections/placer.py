"""A placement job: once the services a held member is placed by run, it puts that member on or off their nodes and releases it.

See ``orch.placement`` for why a member is held, and ``helpers.sh`` (block ``placer``) for what the job does.
"""
from orch import __version__
from orch.quoting import assignment, sbatch_flag, shell_line
from orch.sections.shell import helper_lines

__all__ = ("placer_script",)


def placer_script(experiment_name, run_id, run_dir, member, rule, anchors, own_exclude=None):
    """The placement job's script for one held member.

    + member: ``(name, SLURM job id, run directory)`` of the held member (its ``state/placement`` tells orch what was done)
    + rule: ``apart_from`` or ``together_with``
    + anchors: ``((service name, SLURM job id), ...)``: the services whose nodes place it
    + own_exclude: the member's own ``resources.exclude``, kept beside the services' nodes
    It is submitted with ``--dependency=after:`` on those services: it starts once they have begun (or were cancelled).
    """
    name, job_id, member_run_dir = member
    names = " and ".join(alias for alias, _ in anchors)
    what = "keeps %s off the node(s) of %s" % (name, names) if rule == "apart_from" else "puts %s on the node of %s" % (name, names)
    lines = [
        "#!/bin/bash",
        sbatch_flag("job-name", "%s_%s_place_%s" % (experiment_name, run_id, name)),
        sbatch_flag("output", "%s/logs/place-%s-%%j.out" % (run_dir, name)),
        sbatch_flag("time", "00:10:00"),
        "# rendered by orch %s: placement job: once %s runs, %s, then releases it" % (__version__, names, what),
        "set -o pipefail",
        assignment("orch_member", job_id),
        assignment("orch_member_name", name),
        assignment("orch_marker", member_run_dir + "/state/placement"),
        # relative to where sbatch was called from, as the member's own run directory is
        'case "$orch_marker" in /*) ;; *) orch_marker="${SLURM_SUBMIT_DIR:-$PWD}/$orch_marker" ;; esac',
        assignment("orch_rule", rule),
        "orch_anchor_jobs=(%s)" % shell_line(*(job for _, job in anchors)),
        "orch_anchor_names=(%s)" % shell_line(*(alias for alias, _ in anchors)),
        assignment("orch_own_exclude", own_exclude or ""),
    ]
    lines.extend(helper_lines("write"))
    lines.extend(helper_lines("placer"))
    lines.append("orch_place")
    return "\n".join(lines) + "\n"
