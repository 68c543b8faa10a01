"""Kinds are found by discovery: a new kind is a new module, and every kind module is registered."""
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import orch.kinds
from conftest import ROOT
from orch.kinds import KINDS, Kind, discovered, kinds_in

HELPERS = {"common", "client", "health", "service"}


def test_every_kind_module_is_registered():
    modules = {info.name for info in pkgutil.iter_modules(orch.kinds.__path__)}
    kind_modules = modules - HELPERS
    assert kind_modules, "no kind modules found"
    for name in sorted(kind_modules):
        module = __import__("orch.kinds." + name, fromlist=["KIND"])
        assert isinstance(module.KIND, Kind), name
        assert KINDS[module.KIND.name] is module.KIND, "%s is not in KINDS" % name


def test_helper_modules_hold_no_kind():
    for name in HELPERS:
        module = __import__("orch.kinds." + name, fromlist=["x"])
        assert not hasattr(module, "KIND") and not hasattr(module, "KINDS"), name


def test_each_service_kind_gives_its_port_and_image_once():
    # the Kind record and the sections it renders read the same values: change the port, the script follows
    from orch import render_job
    from orch.recipe import parse_job

    for kind in (k for k in KINDS.values() if k.role == "service"):
        assert kind.port and kind.docker_source, kind.name
        script = render_job(parse_job("service:\n  name: %s\n" % kind.name, runtime="apptainer"))
        assert kind.docker_source in script, kind.name
        assert str(kind.port) in script, kind.name


def test_kinds_in_takes_a_kind_or_a_list_and_refuses_anything_else():
    redis = KINDS["redis"]
    assert kinds_in(redis, "x") == (redis,)
    assert kinds_in([redis, KINDS["chroma"]], "x") == (redis, KINDS["chroma"])
    with pytest.raises(TypeError, match="--plugin m:X: 3 is not an orch.kinds.Kind"):
        kinds_in([redis, 3], "--plugin m:X")


def test_a_new_kind_is_a_new_module_only(tmp_path):
    # a package of kinds laid out like orch.kinds: discovery finds the new module's KIND, helpers are skipped
    package = tmp_path / "morekinds"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("VALUE = 1\n")
    (package / "memcached.py").write_text(
        "from orch.kinds.service import service_kind\n"
        "from orch.sections import service_port, tcp_probe\n"
        "from orch.quoting import Raw\n"
        "KIND = service_kind('memcached', 'memcached', port=11211, docker_source='docker://memcached:1.6',\n"
        "    command=lambda job: ('memcached', '-p', str(service_port(job, 11211))),\n"
        "    probe=lambda job: tcp_probe(Raw('\"$ORCH_LOCAL\"'), str(service_port(job, 11211))))\n"
    )
    code = "import sys; sys.path.insert(0, %r); from orch.kinds import discovered; print([k.name for k in discovered('morekinds')])" % str(tmp_path)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "['memcached']", result.stderr


def test_discovery_is_what_kinds_holds():
    assert {k.name for k in discovered()} == set(KINDS)


def test_a_client_kind_that_wraps_a_native_tool_needs_no_wrapper():
    from conftest import shellcheck
    from orch import render_job, schema
    from orch.kinds import register
    from orch.kinds.client import client_kind
    from orch.quoting import Raw
    from orch.recipe import parse_job

    ping = client_kind(
        "redis_ping", target="redis", summary="redis-benchmark's PING, as it is",
        parameters={"requests": schema.Numbers(1)}, flags={"requests": "-n"}, docker_source="docker://redis:7-alpine",
        program=lambda job: ("redis-benchmark", "-h", Raw('"$TARGET_HOST"'), "-p", Raw('"$TARGET_PORT"'), "-t", "ping", "-q"),
    )
    kinds = register(ping)
    job = parse_job("client:\n  name: redis_ping\n  parameters:\n    requests: [100, 1000]\n", site="local", runtime="host",
                    kinds=kinds)
    script = render_job(job, kinds)
    started = next(line for line in script.splitlines() if line.startswith("setsid "))
    # the tool itself, in the job's environment (orch's helper turns ORCH_ENV_* back into the recipe's names)
    assert started == ('setsid bash -c "$ORCH_IN_ENV" orch-env redis-benchmark -h "$TARGET_HOST" -p "$TARGET_PORT" -t ping -q '
                       '"${orch_args[@]}" &')
    assert "python3 -m orch.clients" not in script
    assert "orch_args=(-n 100)" in script and "orch_args=(-n 1000)" in script
    assert shellcheck(script) == ""


def test_two_kinds_of_one_name_are_an_error_not_an_override():
    from orch.kinds import by_name

    with pytest.raises(ValueError, match="two kinds are called 'redis'"):
        by_name([KINDS["redis"], KINDS["redis"].set(summary="another redis")])


def test_a_plugin_module_is_read_as_discovery_reads_orchs_own(tmp_path):
    # --plugin MODULE without :ATTR takes the module's KINDS (or KIND), like a module of orch.kinds
    (tmp_path / "twokinds.py").write_text(
        "from orch.kinds import KINDS as OURS\n"
        "KINDS = [OURS['redis'].set(name='redis_a'), OURS['redis'].set(name='redis_b')]\n")
    env = dict(__import__("os").environ, PYTHONPATH="%s:%s" % (tmp_path, ROOT))
    result = subprocess.run([sys.executable, "-m", "orch", "--plugin", "twokinds", "list"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert {"redis_a", "redis_b"} <= {line.split()[0] for line in result.stdout.splitlines()}
