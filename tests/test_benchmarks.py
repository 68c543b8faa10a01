"""The benchmarks stay runnable: their baselines still describe what orch does (no timing here)."""
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))


def test_the_jinja2_baseline_renders_the_script_orch_renders():
    # bench_render.py compares render speed against this template only while both give the same script
    import jinja_baseline
    from bench_render import RECIPE

    import orch
    from orch.recipe import load_job

    job = load_job(RECIPE)
    assert jinja_baseline.render(jinja_baseline.template(), job, orch.__version__) == orch.render_job(job), \
        "benchmarks/redis.sh.j2 no longer matches orch's script: bring it up to date (bench_render.py shows the diff)"
