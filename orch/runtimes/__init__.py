"""Runtimes: how a command runs on the node (in an Apptainer or Charliecloud image, or from PATH).

A runtime is a record of two functions of the job and a snippet of bash, the same shape for every runtime:

- ``image(job, source, sidecar=None)``: lines that set ``$ORCH_IMAGE`` (a sidecar's: its own
  ``(variable, file name)``) to the image and make sure it is there (fetched only when the site's ``pull`` policy allows it, else the job fails at
  once naming the image and the command that prepares it);
- ``wrap(job, words, image, binds, gpu)``: the words that run a command in that image, with the run
  directory, the recipe's ``bind_mounts`` and ``binds`` mounted, and the GPU when the job asks for
  one (``gpu=False``: a sidecar, which needs none);
- ``environment``: the bash that hands the job's environment (``orch.sections.environment``) to a
  command the runtime's way: plain variables (host, Charliecloud, whose ``ch-run`` passes them
  through) or ``APPTAINERENV_<NAME>``.

Scripts of two runtimes differ only in the lines these functions give (``tests/test_runtimes.py``).
"""
from orch.runtimes.apptainer import APPTAINER
from orch.runtimes.charliecloud import CHARLIECLOUD
from orch.runtimes.host import HOST
from orch.runtimes.images import gpu_requested, image_path
from orch.runtimes.record import Runtime

__all__ = ("Runtime", "RUNTIMES", "APPTAINER", "CHARLIECLOUD", "HOST", "gpu_requested", "image_path", "runtime_of")

RUNTIMES = {runtime.name: runtime for runtime in (APPTAINER, CHARLIECLOUD, HOST)}


def runtime_of(job):
    return RUNTIMES[job.runtime]
