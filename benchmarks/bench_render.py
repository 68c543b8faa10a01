"""Render speed and CLI start-up of orch, each beside a Jinja2 baseline measured in the same run.

    python benchmarks/bench_render.py [--json PATH] [--no-check] [--profile]

Measures, for ``recipes/services/redis.yaml`` (site meluxina, runtime apptainer,
default id and run directory):

1. render: ``orch.render_job(job)`` for a job parsed once, against the Jinja2
   template ``benchmarks/redis.sh.j2`` rendering the same script from the same
   record (compiled once, outside the timing). Median and p90 per render.
2. process: wall time of ``python -m orch render RECIPE --no-mkdir``, against
   a process that loads the recipe with strictyaml and renders the template
   (``jinja_baseline.main``), and against ``python -c pass``; twice: with the
   bytecode cached in a temporary PYTHONPYCACHEPREFIX ("cached", as an
   installed package runs) and with the repository's modules compiled at every
   start ("source": a checkout under PYTHONDONTWRITEBYTECODE=1, as this
   project's shells run).
3. imports: ``python -X importtime`` of the CLI render, and the modules the
   render path leaves in ``sys.modules`` (``sh``, ``matplotlib``, ``jinja2``,
   ``hypothesis`` must not be there).

The two ways must produce byte-for-byte the same script; if not, a diff is
printed and the exit status is 2. Targets (exit status 1 when missed, unless
``--no-check``): orch's render median no slower than Jinja2's; the CLI's
median under 250 ms in both bytecode modes; none of the heavy modules imported.
"""
import argparse
import difflib
import gc
import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

RECIPE = "recipes/services/redis.yaml"
with open(os.path.join(ROOT, RECIPE), "rb") as _recipe:
    RECIPE_ID = hashlib.sha256(_recipe.read()).hexdigest()[:8]
CLI_TARGET_MS = 250.0
HEAVY = ("sh", "matplotlib", "jinja2", "hypothesis")

PROCESSES = {
    # the id the baseline gives (the recipe's content hash): orch render's own is a new one each time
    "orch": [sys.executable, "-m", "orch", "render", RECIPE, "--no-mkdir", "--id", RECIPE_ID],
    "jinja2": [
        sys.executable,
        "-c",
        "import jinja2, strictyaml, sys; sys.path.insert(0, 'benchmarks'); import jinja_baseline; "
        "sys.exit(jinja_baseline.main([%r]))" % RECIPE,
    ],
    "python": [sys.executable, "-c", "pass"],
}

# the CLI's render path in a fresh interpreter: what it leaves in sys.modules
MODULES_SNIPPET = """
import contextlib, io, json, sys
from orch.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    status = main(["render", %r, "--no-mkdir"])
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
""" % RECIPE

# the same, split in two: importing what the render path imports, then main() itself
PHASES_SNIPPET = """
import time
t0 = time.perf_counter()
import orch.cli, orch.errors, orch.kinds, orch.recipe, orch.sections
t1 = time.perf_counter()
import contextlib, io, json
with contextlib.redirect_stdout(io.StringIO()):
    orch.cli.main(["render", %r, "--no-mkdir"])
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "main_ms": (t2 - t1) * 1e3}))
""" % RECIPE


# ------------------------------------------------------------------ helpers


def percentile(values, q):
    """The q-th percentile (0..100), linear between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values):
    return {"median": statistics.median(values), "p90": percentile(values, 90), "min": min(values), "n": len(values)}


def machine():
    from machine import cpu_model  # benchmarks/machine.py, beside this script

    model = cpu_model()
    system = platform.platform()
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            fields = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
        system = fields.get("PRETTY_NAME", system).strip('"')
    except OSError:
        pass
    try:
        with open("/etc/debian_version", encoding="utf-8") as handle:
            system += " (%s)" % handle.read().strip()
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": model,
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "system": system,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
    }


def show_diff(expected, got, label_expected, label_got):
    sys.stderr.write("MISMATCH: %s and %s differ\n" % (label_expected, label_got))
    sys.stderr.writelines(difflib.unified_diff(expected.splitlines(True), got.splitlines(True), label_expected, label_got))


# -------------------------------------------------------------- measurements


def time_renders(functions, iterations, batch=100, warmup=200):
    """Per-call wall time in µs of each function, interleaved in batches so drift hits all alike."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    samples = {name: [] for name in functions}
    clock = time.perf_counter_ns
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection landing in one side's batch is noise
    try:
        done = 0
        while done < iterations:
            for name, function in functions.items():
                out = samples[name]
                for _ in range(batch):
                    start = clock()
                    function()
                    out.append((clock() - start) / 1e3)
            done += batch
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def bytecode_modes(cache_dir):
    """The environments the processes run in, both independent of any __pycache__ in the checkout.

    Bytecode goes to and comes from ``cache_dir`` (PYTHONPYCACHEPREFIX).
    cached: written and read, as an installed package runs (the warm-up fills it).
    source: the repository's modules (orch, benchmarks) compiled at every start,
    the standard library and site-packages still cached: a source checkout run
    with PYTHONDONTWRITEBYTECODE=1 (as this project's shells are) and no bytecode.
    """
    cached = dict(os.environ, PYTHONPYCACHEPREFIX=cache_dir)
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    source = dict(os.environ, PYTHONPYCACHEPREFIX=cache_dir, PYTHONDONTWRITEBYTECODE="1")
    return {"cached": cached, "source": source}


def drop_repository_bytecode(cache_dir):
    """Forget the cached bytecode of the repository's own modules (for the ``source`` mode)."""
    shutil.rmtree(os.path.join(cache_dir, ROOT.lstrip(os.sep)), ignore_errors=True)


def bytecode_note():
    pycache = os.path.join(ROOT, "orch", "__pycache__")
    has_pyc = os.path.isdir(pycache) and any(n.endswith(".pyc") for n in os.listdir(pycache))
    return {
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "orch_has_pycache": has_pyc,
        "note": "process figures use their own PYTHONPYCACHEPREFIX; orch/__pycache__ is not read",
    }


def time_processes(runs, env, warmup=2):
    """Whole-process wall time in ms of each command, interleaved (rotating order)."""

    def run(command):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = (time.perf_counter() - start) * 1e3
        if result.returncode != 0:
            raise SystemExit("benchmark: %s failed (%d): %s" % (" ".join(command), result.returncode, result.stderr.decode()))
        return elapsed

    names = list(PROCESSES)
    for _ in range(warmup):
        for name in names:
            run(PROCESSES[name])
    samples = {name: [] for name in names}
    for index in range(runs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(run(PROCESSES[name]))
    return samples


def parse_importtime(text):
    """``(name, self_us, cumulative_us, depth)`` for every line of ``-X importtime`` output."""
    entries = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, cumulative, name = line.split("|", 2)
        self_us = head.split(":", 1)[1]
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        entries.append((name.strip(), int(self_us), int(cumulative), depth))
    return entries


def importtime(runs, env):
    """Median cumulative import time per module over ``runs`` CLI renders; the start-up modules apart."""

    def collect(command):
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise SystemExit("benchmark: %s failed (%d): %s" % (" ".join(command), result.returncode, result.stderr[-2000:]))
        return parse_importtime(result.stderr)

    startup = {name for name, _, _, _ in collect([sys.executable, "-X", "importtime", "-c", "pass"])}
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    per_module, orch_totals, packages = {}, [], {}
    for _ in range(runs):
        entries = collect([sys.executable, "-X", "importtime"] + PROCESSES["orch"][1:])
        total, by_package = 0, {}
        for name, self_us, cumulative, depth in entries:
            per_module.setdefault(name, []).append(cumulative)
            if depth == 0 and (name == "orch" or name.startswith("orch.")):
                total += cumulative
            if name not in startup:
                top = name.split(".")[0]
                bucket = "stdlib (not at start-up)" if top in stdlib else top
                by_package[bucket] = by_package.get(bucket, 0) + self_us
        orch_totals.append(total)
        for bucket, us in by_package.items():
            packages.setdefault(bucket, []).append(us)
    medians = {name: statistics.median(values) for name, values in per_module.items()}
    ranked = sorted(medians.items(), key=lambda item: -item[1])
    top = [{"module": name, "cumulative_ms": us / 1e3, "startup": name in startup} for name, us in ranked[:10]]
    top_render_path = [
        {"module": name, "cumulative_ms": us / 1e3} for name, us in ranked if name not in startup
    ][:10]
    # self time of every module the render path adds, summed by top-level package
    by_package = sorted(((b, statistics.median(v) / 1e3) for b, v in packages.items()), key=lambda item: -item[1])
    return {
        "runs": runs,
        "orch_imports_ms": statistics.median(orch_totals) / 1e3,
        "top10": top,
        "top10_excluding_startup": top_render_path,
        "self_ms_by_package": dict(by_package),
        "modules_imported": len(medians),
        "startup_modules": len(startup),
    }


def render_path_modules(env):
    """What the CLI's render path leaves in sys.modules, in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", MODULES_SNIPPET], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit("benchmark: the sys.modules check failed: %s" % result.stderr)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    modules = report["modules"]
    heavy = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    third_party = sorted({m.split(".")[0] for m in modules} - set(stdlib) - {"__main__", "orch"})
    return {"status": report["status"], "count": len(modules), "heavy_loaded": heavy, "third_party_top_level": third_party}


def phases(runs, env):
    """In a fresh interpreter: importing the render path's orch modules, then ``main()`` itself (ms)."""
    samples = {"import_ms": [], "main_ms": []}
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-c", PHASES_SNIPPET], cwd=ROOT, env=env, capture_output=True, text=True)
        values = json.loads(result.stdout.strip().splitlines()[-1])
        for key in samples:
            samples[key].append(values[key])
    return {key: summary(values) for key, values in samples.items()}


def profile(job, renders, top=20):
    import cProfile
    import pstats

    import orch

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(renders):
        orch.render_job(job)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=3000, help="renders timed per side (default 3000)")
    parser.add_argument("--processes", type=int, default=20, help="runs of each process, per bytecode mode (default 20)")
    parser.add_argument("--importtime-runs", type=int, default=5, help="-X importtime runs (default 5)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON to PATH")
    parser.add_argument("--no-check", action="store_true", help="record only: exit 0 even when a target is missed")
    parser.add_argument("--profile", type=int, nargs="?", const=2000, metavar="N",
                        help="also print a cProfile of N orch renders (default 2000)")
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    import orch
    from orch.recipe import load_job

    import jinja_baseline

    job = load_job(RECIPE)
    compiled = jinja_baseline.template()
    version = orch.__version__

    # the comparison is only honest while both ways give the same script
    expected = orch.render_job(job)
    got = jinja_baseline.render(compiled, job, version)
    if got != expected:
        show_diff(expected, got, "orch.render_job", "jinja2 (%s)" % os.path.basename(jinja_baseline.TEMPLATE_FILE))
        return 2
    for label, command in (("python -m orch render", PROCESSES["orch"]), ("jinja2 baseline process", PROCESSES["jinja2"])):
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0 or result.stdout != expected:
            sys.stderr.write(result.stderr)
            show_diff(expected, result.stdout, "orch.render_job", label)
            return 2

    renders = time_renders(
        {
            "orch": lambda: orch.render_job(job),
            "jinja2": lambda: compiled.render(job=job, version=version),
        },
        args.iterations,
    )
    parse = time_renders({"load_job": lambda: load_job(RECIPE)}, max(200, args.iterations // 10), batch=50, warmup=20)
    cache_dir = tempfile.mkdtemp(prefix="orch-bench-pycache-")
    processes, imports, phase_times = {}, {}, {}
    try:
        envs = bytecode_modes(cache_dir)
        for mode, env in envs.items():  # cached first: it fills the cache the source mode reuses
            if mode == "source":
                drop_repository_bytecode(cache_dir)
            processes[mode] = time_processes(args.processes, env)
            imports[mode] = importtime(args.importtime_runs, env)
            phase_times[mode] = phases(max(1, args.processes // 2), env)
            if mode == "cached":
                modules = render_path_modules(env)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    modules["phases_ms"] = phase_times

    figures = {
        "recipe": RECIPE,
        "machine": machine(),
        "bytecode": bytecode_note(),
        "script_bytes": len(expected.encode()),
        "render_us": {name: summary(values) for name, values in renders.items()},
        "parse_us": summary(parse["load_job"]),
        "process_ms": {mode: {name: summary(v) for name, v in samples.items()} for mode, samples in processes.items()},
        "imports": imports,
        "render_path_modules": modules,
    }
    r = figures["render_us"]
    figures["ratios"] = {"render_orch_over_jinja2": r["orch"]["median"] / r["jinja2"]["median"]}
    for mode, p in figures["process_ms"].items():
        figures["ratios"]["process_%s_orch_over_jinja2" % mode] = p["orch"]["median"] / p["jinja2"]["median"]
        figures["ratios"]["process_%s_orch_minus_python_ms" % mode] = p["orch"]["median"] - p["python"]["median"]
        figures["ratios"]["process_%s_jinja2_minus_python_ms" % mode] = p["jinja2"]["median"] - p["python"]["median"]

    missed = []
    if r["orch"]["median"] > r["jinja2"]["median"]:
        missed.append(
            "render: orch %.1f µs is slower than the Jinja2 baseline %.1f µs (x%.2f)"
            % (r["orch"]["median"], r["jinja2"]["median"], figures["ratios"]["render_orch_over_jinja2"])
        )
    for mode, p in figures["process_ms"].items():
        if p["orch"]["median"] > CLI_TARGET_MS:
            missed.append("process (%s): python -m orch render takes %.1f ms (target: under %d ms)"
                          % (mode, p["orch"]["median"], CLI_TARGET_MS))
    if modules["heavy_loaded"]:
        missed.append("imports: the render path loads %s" % ", ".join(modules["heavy_loaded"]))
    figures["targets"] = {
        "render_no_slower_than_jinja2": r["orch"]["median"] <= r["jinja2"]["median"],
        "process_under_ms": CLI_TARGET_MS,
        "process_under_target": all(p["orch"]["median"] <= CLI_TARGET_MS for p in figures["process_ms"].values()),
        "no_heavy_imports": not modules["heavy_loaded"],
        "missed": missed,
    }

    report(figures)
    if args.profile:
        print("\ncProfile of %d orch renders (all times in s):" % args.profile)
        print(profile(job, args.profile))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
    if missed:
        for line in missed:
            print("TARGET MISSED: " + line, file=sys.stderr)
        return 0 if args.no_check else 1
    print("all targets met")
    return 0


def report(f):
    m, r, ratios, modules = f["machine"], f["render_us"], f["ratios"], f["render_path_modules"]
    print("orch render benchmark: %s (meluxina, apptainer), script of %d bytes" % (f["recipe"], f["script_bytes"]))
    print("machine: %s, %s CPUs usable; %s; Python %s" % (m["cpu_model"], m["nproc"], m["system"], m["python"]))
    b = f["bytecode"]
    print("processes: [cached] bytecode cached (an installed package); [source] orch compiled at every start"
          " (PYTHONDONTWRITEBYTECODE=1, as here: %s)" % (b["PYTHONDONTWRITEBYTECODE"] or "unset"))
    print()
    print("%-46s %10s %10s %5s" % ("", "median", "p90", "n"))
    rows = [
        ("render  orch.render_job(job)", r["orch"], "µs"),
        ("render  Jinja2 template, same record", r["jinja2"], "µs"),
        ("parse   orch.recipe.load_job (info only)", f["parse_us"], "µs"),
    ]
    for mode, p in f["process_ms"].items():
        rows += [
            ("process [%s] python -m orch render" % mode, p["orch"], "ms"),
            ("process [%s] strictyaml + Jinja2" % mode, p["jinja2"], "ms"),
            ("process [%s] python -c pass" % mode, p["python"], "ms"),
        ]
    for label, s, unit in rows:
        print("%-46s %7.1f %2s %7.1f %2s %5d" % (label, s["median"], unit, s["p90"], unit, s["n"]))
    print()
    print("ratio render orch / Jinja2: %.2f  (target <= 1.00)" % ratios["render_orch_over_jinja2"])
    for mode, p in f["process_ms"].items():
        print("process [%s]: orch / Jinja2 baseline %.2f; above `python -c pass`: orch %.1f ms, Jinja2 %.1f ms; "
              "orch median %.1f ms (target < %d ms)"
              % (mode, ratios["process_%s_orch_over_jinja2" % mode], ratios["process_%s_orch_minus_python_ms" % mode],
                 ratios["process_%s_jinja2_minus_python_ms" % mode], p["orch"]["median"], CLI_TARGET_MS))
    print()
    for mode, imports in f["imports"].items():
        phases = modules["phases_ms"][mode]
        print("imports [%s] (python -X importtime, median of %d runs):" % (mode, imports["runs"]))
        print("  orch's own imports (top-level orch.* entries): %.1f ms; timed in-process: import %.1f ms, then main() %.1f ms"
              % (imports["orch_imports_ms"], phases["import_ms"]["median"], phases["main_ms"]["median"]))
        print("  self time by package, modules not loaded at start-up: "
              + ", ".join("%s %.1f ms" % kv for kv in imports["self_ms_by_package"].items() if kv[1] >= 0.05))
        print("  top 10 cumulative (* = also imported by `python -c pass`):")
        for entry in imports["top10"]:
            print("    %8.1f ms  %s%s" % (entry["cumulative_ms"], entry["module"], "  *" if entry["startup"] else ""))
        print("  top 10 cumulative of the render path alone:")
        for entry in imports["top10_excluding_startup"]:
            print("    %8.1f ms  %s" % (entry["cumulative_ms"], entry["module"]))
    print("sys.modules after the CLI render: %d modules; third-party: %s"
          % (modules["count"], ", ".join(modules["third_party_top_level"])))
    print("heavy modules (%s) loaded: %s" % (", ".join(HEAVY), ", ".join(modules["heavy_loaded"]) or "none"))


if __name__ == "__main__":
    sys.exit(main())
