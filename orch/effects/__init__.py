"""The effects layer: the only code that runs processes, reads or writes files for orch, or asks the clock.

- ``process``: running a command (through ``sh``, with an explicit environment), locally or over ssh
- ``files``: reading, listing and writing files, locally or on a login node
- ``scheduler``: sbatch, squeue, sacct, scontrol, scancel (their command lines come from ``orch.argv``)
- ``registry``: the run records under ``$ORCH_HOME``

Everything above this package receives what it needs (readers, the clock, the
host name, the environment) as arguments, so it can be tested as pure code.
"""
