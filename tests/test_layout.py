"""The shape of the code: small modules, and the world (processes, files written, environment, clock, host name)
reached only from the edge: the effects layer, the command line, the load generators and the modules that wire them."""
import ast
import re

from conftest import ROOT

ORCH = ROOT / "orch"
MAX_LINES = 400
# modules allowed to reach the world; everything else gets it as arguments. Of the load generators,
# only the drivers are edge: their stream parsing, workloads and documents are pure modules too.
DRIVERS = ("node.py", "tool.py", "ollama_benchmark.py", "llm_benchmark.py", "chroma_benchmark.py", "redis_benchmark.py",
           "mysql_benchmark.py", "pgbench.py")
EDGE = ("effects/", "cli/", "report/write.py", "runs.py", "experiment_runs.py") + tuple("clients/" + d for d in DRIVERS)
WORLD_MODULES = {"subprocess", "sh", "socket", "fcntl", "shutil", "urllib.request", "http.client"}
WORLD_CALLS = re.compile(
    r"\bos\.(environ|getenv|getcwd|listdir|scandir|makedirs|mkdir|replace|rename|unlink|remove|chmod|system|fsync)\b"
    r"|\btime\.(time|monotonic|perf_counter|time_ns|monotonic_ns|perf_counter_ns)\(|\bdatetime\.now\(|\bgethostname\("
    r"|\bfrom time import|\.write_(text|bytes)\(|\bopen\([^)]*[\"'][wax]b?\+?[\"']"
)


def modules():
    return sorted(p for p in ORCH.rglob("*.py") if "__pycache__" not in p.parts)


def relative(path):
    return str(path.relative_to(ORCH))


def test_no_module_is_over_400_lines():
    long = {relative(p): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, "split these along their seams: %s" % long


def test_only_the_edge_imports_what_reaches_the_world():
    found = []
    for path in modules():
        if relative(path).startswith(EDGE):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            found += ["%s imports %s" % (relative(path), n) for n in names if n in WORLD_MODULES]
    assert not found, found


def test_only_the_edge_reads_the_environment_the_clock_or_the_host_or_changes_files():
    found = []
    for path in modules():
        if relative(path).startswith(EDGE):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if WORLD_CALLS.search(line.split("#", 1)[0]) and not line.lstrip().startswith((">>>", "...")):
                found.append("%s:%d: %s" % (relative(path), number, line.strip()))
    assert not found, found


def test_the_native_tool_drivers_need_nothing_but_the_standard_library():
    # they run on compute nodes under whatever python3 the node has: orch's own dependencies may be missing there
    import subprocess
    import sys

    code = ("import sys; import orch.clients.redis_benchmark, orch.clients.mysql_benchmark, orch.clients.node; "
            "print(sorted(m for m in ('pyrsistent', 'toolz', 'strictyaml', 'sh', 'numpy', 'aiohttp') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
