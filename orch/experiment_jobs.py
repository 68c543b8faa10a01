"""An experiment's jobs: the ``Job`` record of each member as ``orch run`` submits it, and the conductor's script.

Pure: ``orch.experiment_runs`` submits what ``member_jobs`` returns, and the
golden files render it through ``experiment_scripts`` without submitting anything.
"""
from pyrsistent import pmap

from orch.metrics import DEFAULT_SCRAPE_INTERVAL
from orch.recipe import parse_job
from orch.sections.conductor import conductor_script
from orch.sections.placer import placer_script

__all__ = ("member_adjustment", "aimed_at", "member_jobs", "experiment_scripts", "conductor_of", "placers_of")


def member_adjustment(experiment, member, run_id):
    """``Job -> Job``: what the experiment adds to one member (its label, exporters, the experiment's sweep)."""

    def adjust(job):
        job = job.set(experiment=run_id)
        if member.monitoring:
            return job
        if "node_exporter" in experiment.exporters:
            job = job.set(node_exporter=True)
        if "cadvisor" in experiment.exporters and job.role == "service":
            job = job.set(cadvisor=True)
        if member.sweep:
            job = job.set(parameters=pmap(dict(job.parameters, **member.sweep)))
        return job

    return adjust


def aimed_at(client, service):
    """The client job aimed at that very service job: its endpoint file, in its endpoints directory."""
    return client.set(endpoints_dir=service.endpoints_dir, target=client.target.set(name=service.job_name))


def member_jobs(experiment, run_id, runs_root, *, site, runtime, member_id, kinds=None, python=None):
    """``[(member, Job)]`` in the order they are submitted: the monitoring, the services, then the clients.

    + runs_root: the directory that holds every run directory (the experiment's is ``runs_root/run_id``,
      each member's ``runs_root/<its id>``)
    + member_id: ``index -> id`` for the member at that place in the order
    """
    endpoints = "%s/%s/endpoints" % (runs_root, run_id)
    ordered = sorted(experiment.services, key=lambda m: not m.monitoring) + list(experiment.clients)
    jobs, services = [], {}
    for index, member in enumerate(ordered):
        the_id = member_id(index)
        job = parse_job(member.text, member.source, site=site, runtime=runtime, job_id=the_id,
                        run_dir="%s/%s" % (runs_root, the_id), endpoints_dir=endpoints, kinds=kinds, python=python)
        if member.role == "client":
            job = aimed_at(job, services[member.target])
        job = member_adjustment(experiment, member, run_id)(job)
        if member.role == "service":
            services[member.alias] = job
        jobs.append((member, job))
    return jobs


def experiment_scripts(experiment, run_id, runs_root, *, site, runtime, member_id, job_id, started, kinds=None, python=None):
    """``{name: script}``: every member's script as ``orch run`` submits it, and the conductor's (when there is one).

    + job_id: ``index -> SLURM job id`` of the member at that place (the conductor names the services' ids)
    + started: the epoch second the run began (the conductor keeps metrics from then on)
    """
    from orch import render_job

    jobs = member_jobs(experiment, run_id, runs_root, site=site, runtime=runtime, member_id=member_id, kinds=kinds,
                       python=python)
    scripts = {"%s-%s" % (member.role, member.alias): render_job(job, kinds) for member, job in jobs}
    conductor = conductor_of(experiment, run_id, "%s/%s" % (runs_root, run_id), jobs,
                             [job_id(index) for index in range(len(jobs))], started)
    if conductor is not None:
        scripts["conductor"] = conductor
    for member, _, script in placers_of(experiment, run_id, "%s/%s" % (runs_root, run_id), jobs,
                                        [job_id(index) for index in range(len(jobs))]):
        scripts["place-%s" % member.alias] = script
    return scripts


def placers_of(experiment, run_id, run_dir, jobs, job_ids):
    """``[(member, the SLURM ids of the services it is placed by, the placement job's script)]`` for every placed member.

    + jobs / job_ids: the submitted ``(member, Job)`` pairs and their SLURM ids, in the same order
    """
    by_alias = {member.alias: job_id for (member, _), job_id in zip(jobs, job_ids) if member.role == "service"}
    placers = []
    for (member, job), job_id in zip(jobs, job_ids):
        if member.placement is None:
            continue
        anchors = tuple((alias, by_alias[alias]) for alias in member.placement.anchors)
        script = placer_script(experiment.name, run_id, run_dir, (member.alias, job_id, job.run_dir), member.placement.rule,
                               anchors, own_exclude=job.resources.exclude)
        placers.append((member, tuple(job for _, job in anchors), script))
    return placers


def conductor_of(experiment, run_id, run_dir, jobs, job_ids, started):
    """The conductor's script for the submitted ``jobs`` (with their SLURM ``job_ids``), or None when none is needed."""
    services = [(member, job, job_id) for (member, job), job_id in zip(jobs, job_ids) if member.role == "service"]
    has_clients = any(member.role == "client" for member, _ in jobs)
    prometheus = next((job for member, job, _ in services if member.monitoring and member.alias == "prometheus"), None)
    if not has_clients or (experiment.keep_services and prometheus is None):
        return None
    return conductor_script(
        experiment.name, run_id, run_dir, [job_id for _, _, job_id in services], stop=not experiment.keep_services,
        prometheus_endpoint="%s/%s.json" % (prometheus.endpoints_dir, prometheus.job_name) if prometheus else None,
        scrape_interval=experiment.scrape_interval or DEFAULT_SCRAPE_INTERVAL, start=started,
    )
