"""What a load generator learns from the compute node it runs on, and how it leaves its results there.

The one place in the clients that reads the job's environment, the host
name and the clock, and writes a results document; ``orch.results`` builds
the documents from what this module hands it.
"""
import os
import socket
import time

from orch.effects.files import write_atomically

__all__ = ("this_job", "started_now", "write_document")


def this_job(environ=None, host=None):
    """The job this process runs in: its orch id and name (``ORCH_JOB``), SLURM job id, array task and node."""
    environ = os.environ if environ is None else environ
    job_name = environ.get("ORCH_JOB")
    return {
        "id": (job_name or "").rsplit("_", 1)[-1] or None,
        "job_name": job_name,
        "node": host or socket.gethostname(),
        "slurm_job_id": environ.get("SLURM_JOB_ID"),
        "array_task": environ.get("SLURM_ARRAY_TASK_ID"),
    }


def started_now():
    """Epoch seconds now: when a document's run started or ended."""
    return time.time()


def write_document(path, document):
    """Write the results document whole or not at all (temp file, fsync, rename), its directory made first."""
    import json

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
