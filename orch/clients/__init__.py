"""Load generators, run inside client jobs as ``python -m orch.clients.<kind>``.

Each module's ``main(argv)`` takes ``--host --port --duration --output`` and the
flags its kind (``orch.kinds.<kind>``) renders from the recipe's parameters,
measures, and writes one ``orch.result/1`` document (``orch.results``). A
client stopped by SIGTERM or SIGINT (scancel, the time limit) still writes what
it measured, marked ``"partial": true``, and exits 143.
"""
