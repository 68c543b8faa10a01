"""Rendering: headers follow resources, scripts parse and pass shellcheck, output is deterministic."""
import pytest

from conftest import SEED_STYLE, SHIPPED, bash_syntax, directives, shellcheck
from orch import render_job
from orch.recipe import load_job, parse_job

COMBINATIONS = [(site, runtime) for site in ("meluxina", "local") for runtime in ("apptainer", "host")]


@pytest.mark.parametrize("path", SHIPPED + SEED_STYLE, ids=lambda p: p.name)
def test_every_recipe_renders_a_script_that_parses_and_passes_shellcheck(path):
    for site, runtime in COMBINATIONS:
        script = render_job(load_job(path, site=site, runtime=runtime))
        assert script.startswith("#!/bin/bash\n") and script.endswith("\n")
        assert bash_syntax(script) == "", (site, runtime)
        assert shellcheck(script) == "", (site, runtime)


def test_monitoring_block_renders_too():
    from conftest import ROOT

    script = render_job(load_job(ROOT / "tests/recipes/seed_mysql.yaml", part="monitoring"))
    assert "prometheus" in script and shellcheck(script) == ""


def test_header_maps_every_resource_onto_its_sbatch_option():
    job = parse_job(
        "service:\n  name: redis\n  resources:\n    nodes: 2\n    ntasks: 4\n    ntasks_per_node: 2\n"
        "    cpus_per_task: 8\n    mem: 16GB\n    time: 1-02:00:00\n    partition: gpu\n    qos: short\n"
        "    gres: gpu:a100:2\n    account: p200981\n"
    )
    found = directives(render_job(job))
    assert found["nodes"] == "2" and found["ntasks"] == "4" and found["ntasks-per-node"] == "2"
    assert found["cpus-per-task"] == "8" and found["mem"] == "16GB" and found["time"] == "1-02:00:00"
    assert found["partition"] == "gpu" and found["qos"] == "short" and found["gres"] == "gpu:a100:2"
    assert found["account"] == "p200981"
    assert found["job-name"] == job.job_name
    assert found["output"] == "orch-runs/%s/logs/%%x-%%j.out" % job.job_name
    assert found["error"] == "orch-runs/%s/logs/%%x-%%j.err" % job.job_name
    assert found["signal"] == "B:TERM@30"


def test_unset_resources_give_no_directive_and_the_site_fills_the_account():
    melux = directives(render_job(parse_job("service:\n  name: redis\n")))
    local = directives(render_job(parse_job("service:\n  name: redis\n", site="local")))
    assert melux["account"] == "p200981" and "account" not in local
    # the site's default partition fills the gap; what neither says stays SLURM's default
    assert melux["partition"] == "cpu" and "partition" not in local
    assert not {"nodes", "mem", "time", "gres"} & set(melux)


def test_recipe_account_wins_over_the_site():
    found = directives(render_job(parse_job("service:\n  name: redis\n  resources:\n    account: p999\n")))
    assert found["account"] == "p999"


def test_meluxina_loads_apptainer_and_local_loads_nothing():
    melux = render_job(parse_job("service:\n  name: redis\n"))
    local = render_job(parse_job("service:\n  name: redis\n", site="local", runtime="host"))
    assert "module purge\nmodule load Apptainer/1.2.4-GCCcore-12.3.0 || orch_fail 'module load Apptainer/1.2.4-GCCcore-12.3.0 failed (site orch/sites/meluxina.yaml)' 1\n" in melux
    assert "module " not in local and "apptainer" not in local


@pytest.mark.parametrize("gres,gpu", [("gpu:1", True), ("gpu:a100:2", True), ("mps:100,gpu:1", True), ("shard:2", False), (None, False)])
def test_nv_exactly_when_a_gpu_is_requested(gres, gpu):
    resources = "  resources:\n    partition: gpu\n" + ("    gres: %s\n" % gres if gres else "")
    script = render_job(parse_job("service:\n  name: ollama\n" + resources))
    assert ("--nv" in script) == gpu


def test_host_runtime_never_uses_apptainer():
    script = render_job(parse_job("service:\n  name: ollama\n  resources:\n    gres: gpu:1\n", runtime="host"))
    assert "apptainer" not in script and "--nv" not in script


def test_rendering_is_deterministic():
    for path in SHIPPED:
        assert render_job(load_job(path)) == render_job(load_job(path))


def test_build_commands_build_the_image_from_a_definition_file():
    from conftest import ROOT

    script = render_job(load_job(ROOT / "tests/recipes/seed_mysql_client.yaml"))
    assert "From: python:3.9\n\n%post\n    pip install --no-cache-dir mysql-connector-python\n" in script
    assert 'apptainer build --force "$ORCH_NEW" "$ORCH_DEF"' in script


def test_environment_reaches_the_container_through_apptainerenv():
    script = render_job(parse_job("service:\n  name: redis\n  environment:\n    A: \"x,y\"\n    B: $A/z\n    C: $HOME/c\n"))
    # kept under orch's own names in the job's shell; a reference to a variable above is resolved
    assert "export ORCH_ENV_A='x,y'\nexport ORCH_ENV_B='x,y/z'\nexport ORCH_ENV_C=\"${HOME-}\"/c\n" in script
    assert 'export "APPTAINERENV_$orch_n=${!orch_v}"' in script
    assert 'setsid bash -c "$ORCH_IN_ENV" orch-env apptainer exec ' in script
    host = render_job(parse_job("service:\n  name: redis\n  environment:\n    A: \"x,y\"\n", runtime="host"))
    assert "export ORCH_ENV_A='x,y'" in host and 'export "${orch_v#ORCH_ENV_}=${!orch_v}"' in host


def test_home_references_expand_at_run_time():
    script = render_job(parse_job("service:\n  name: redis\n  container:\n    image_path: $HOME/containers/r.sif\n"))
    assert 'ORCH_IMAGE="${HOME-}"/containers/r.sif' in script


def test_cadvisor_sidecar_only_when_enabled():
    with_sidecar = render_job(parse_job("service:\n  name: redis\n  enable_cadvisor: true\n  cadvisor_port: 8181\n"))
    without = render_job(parse_job("service:\n  name: redis\n"))
    assert "cadvisor --port=8181" in with_sidecar and 'orch_pids+=("$ORCH_CADVISOR_PID")' in with_sidecar
    assert "cadvisor" not in without


def test_sweep_becomes_one_job_array_with_a_case_per_combination():
    from conftest import ROOT

    script = render_job(load_job(ROOT / "tests/recipes/seed_redis_parametric.yaml"))
    assert directives(script)["array"] == "0-11%1"
    assert directives(script)["output"].endswith("%x-%A_%a.out")
    assert ("    11) orch_args=(--clients 50 --data-size 1024 --pipeline 16 --requests 100000 --tests 'set,get,lpush'); "
            "export ORCH_PARAM_CLIENTS=50 ORCH_PARAM_DATA_SIZE=1024 ORCH_PARAM_PARAMETRIC_MODE=true ORCH_PARAM_PIPELINE=16 "
            "ORCH_PARAM_REQUESTS=100000 ORCH_PARAM_TESTS='set,get,lpush' ORCH_PARAM_WAIT_FOR_SERVICE=60 ;;") in script


def test_client_without_sweep_is_no_array():
    from conftest import ROOT

    assert "array" not in directives(render_job(load_job(ROOT / "recipes/clients/redis_benchmark.yaml")))


def test_client_with_its_own_command_runs_it_with_target_variables():
    from conftest import ROOT

    script = render_job(load_job(ROOT / "tests/recipes/seed_mysql_client.yaml"))
    assert "--endpoint=\"${TARGET_SERVICE_HOST-}\":3306" in script
    assert 'export TARGET_HOST TARGET_PORT TARGET_SCHEME TARGET_URL TARGET_SERVICE_HOST="$TARGET_HOST"' in script
    # the recipe's own variable in its args: its value; the load generator reads it by its own name too
    assert "--user=bench_user" in script and "export ORCH_ENV_MYSQL_USER='bench_user'" in script
    assert "export ORCH_PLAIN_ENV='MYSQL_USER MYSQL_PASSWORD MYSQL_DATABASE'" in script


def test_client_waits_for_the_endpoint_file_of_its_target():
    from conftest import ROOT

    script = render_job(load_job(ROOT / "recipes/clients/chroma_benchmark.yaml"))
    assert 'ORCH_TARGET_FILE="$ORCH_ENDPOINTS_DIR"/chroma.json' in script
    assert "ORCH_WAIT=300" in script
    assert '"$TARGET_URL"/api/v2/heartbeat' in script


def test_client_with_target_endpoint_needs_no_endpoint_file():
    script = render_job(parse_job("client:\n  name: ollama_benchmark\n  target_endpoint: http://mel2073:11434\n"))
    assert "TARGET_HOST='mel2073'" in script and "ORCH_TARGET_FILE" not in script


def test_every_kind_is_a_list_of_sections_returning_lines():
    from orch.kinds import KINDS

    job_text = {"service": "service:\n  name: %s\n", "client": "client:\n  name: %s\n"}
    for kind in KINDS.values():
        job = parse_job(job_text[kind.role] % kind.name)
        for section in kind.sections:
            lines = section(job)
            assert isinstance(lines, tuple) and all(isinstance(line, str) for line in lines), (kind.name, section)


def test_passwords_are_taken_literally_everywhere():
    script = render_job(parse_job("service:\n  name: redis\n  password: \"pa$HOME'x\"\n", runtime="host"))
    assert 'requirepass "pa$HOME\'x"' in script
    assert "export ORCH_ENV_REDISCLI_AUTH='pa$HOME'\"'\"'x'" in script
    grafana = render_job(parse_job("service:\n  name: grafana\n  admin_password: \"$ecret\"\n", runtime="host"))
    assert "export ORCH_ENV_GF_SECURITY_ADMIN_PASSWORD='$ecret'" in grafana


def test_sweep_block_makes_the_same_job_array_as_lists_in_parameters():
    swept = render_job(parse_job("client:\n  name: redis_benchmark\n  sweep_parallelism: 2\n  parameters:\n    requests: 1000\n"
                                 "  sweep:\n    clients: [1, 10, 50]\n    tests: [set, get]\n"))
    assert directives(swept)["array"] == "0-5%2"
    assert "    5) orch_args=(--clients 50 --requests 1000 --tests get); export ORCH_PARAM_CLIENTS=50 " in swept
    inline = render_job(parse_job("client:\n  name: redis_benchmark\n  parameters:\n    requests: 1000\n    clients: 1,10,50\n"))
    assert directives(inline)["array"] == "0-2%1"


def test_a_recipes_own_command_reads_each_sweep_point_from_the_environment():
    script = render_job(parse_job("client:\n  name: redis_benchmark\n  command: ./mine.sh\n  args: [\"--n\", \"$ORCH_PARAM_CLIENTS\"]\n"
                                  "  sweep:\n    clients: [1, 10]\n"))
    assert "    1) export ORCH_PARAM_CLIENTS=10 ;;" in script and "orch_args" not in script
    assert './mine.sh --n "${ORCH_PARAM_CLIENTS-}" &' in script


def section(script, title):
    """The lines of one section of a script: from its banner (``# --- <title>...``) to the next."""
    lines = script.split("\n# --- %s" % title, 1)[1].split("\n", 1)[1].split("\n# --- ", 1)[0]
    return lines.rsplit("\n", 1)[0] if lines.endswith("\n") else lines


SETUP_SEES = """service:
  name: %s
%s  environment:
    FOO: bar
  setup_script: |
    env > "$ORCH_RUN_DIR/seen.env"
"""


@pytest.mark.parametrize("kind, fields, expected", [
    ("redis", "  password: 's3cret$x'\n", {"REDISCLI_AUTH": "s3cret$x"}),
    ("ollama", "", {"OLLAMA_HOST": "127.0.0.1:11434"}),
    ("grafana", "", {"GF_SERVER_HTTP_ADDR": "127.0.0.1", "GF_SERVER_HTTP_PORT": "3000"}),
], ids=["redis", "ollama", "grafana"])
def test_setup_script_sees_the_kinds_defaults_and_the_recipes_environment_under_every_runtime(tmp_path, kind, fields, expected):
    import subprocess

    seen = {}
    for runtime in ("apptainer", "charliecloud", "host"):
        script = render_job(parse_job(SETUP_SEES % (kind, fields), site="local", runtime=runtime))
        run_dir = tmp_path / runtime
        (run_dir / "state").mkdir(parents=True)
        # what the preamble gives these two sections, then the sections as rendered
        text = "\n".join((
            'orch_fail() { echo "FAILED: $1" >&2; exit 1; }',
            "export ORCH_RUN_DIR=%s ORCH_BIND=127.0.0.1" % run_dir,
            section(script, "environment"),
            section(script, "setup_script (from the recipe, verbatim)"),
        ))
        done = subprocess.run(["bash", "-c", text], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        lines = (run_dir / "seen.env").read_text().splitlines()
        seen[runtime] = {name: value for name, _, value in (line.partition("=") for line in lines)
                         if name in set(expected) | {"FOO"}}
    assert seen["apptainer"] == seen["charliecloud"] == seen["host"] == dict(expected, FOO="bar")


def test_description_is_in_the_jobs_log_on_one_line_and_literally():
    script = render_job(parse_job("service:\n  name: redis\n  description: \"cache for $HOME\n  and `id`\"\n"))
    assert "orch_log 'description: cache for $HOME and `id`'\n" in script


def test_cadvisor_runs_beside_a_client_too():
    script = render_job(parse_job("client:\n  name: redis_benchmark\n  enable_cadvisor: true\n  cadvisor_port: 8181\n"))
    assert "cadvisor --port=8181" in script and "orch_publish_target cadvisor 8181" in script


def test_prompts_reach_the_load_generator_one_option_each_and_sweep_into_distinct_tasks():
    together = render_job(parse_job("client:\n  name: ollama_benchmark\n  parameters:\n    prompts: [\"a, b\", \"$HOME -x\"]\n"))
    assert "orch_args=('--prompt=a, b' '--prompt=$HOME -x')" in together and "array" not in directives(together)
    swept = render_job(parse_job("client:\n  name: ollama_benchmark\n  sweep:\n    prompts: [why, how]\n"))
    assert directives(swept)["array"] == "0-1%1"
    assert "    0) orch_args=(--prompt=why);" in swept and "    1) orch_args=(--prompt=how);" in swept


def test_the_seeds_prometheus_storage_path_is_where_its_data_is_in_the_container():
    from conftest import ROOT

    script = render_job(load_job(ROOT / "tests/recipes/seed_prometheus.yaml"))
    assert "--storage.tsdb.path=/prometheus " in script
    assert '--bind "${ORCH_RUN_DIR-}"/prometheus-data:/prometheus ' in script
    # no container on the host runtime: the data directory itself
    host = render_job(load_job(ROOT / "tests/recipes/seed_prometheus.yaml", runtime="host"))
    assert '--storage.tsdb.path="$ORCH_RUN_DIR/prometheus-data"' in host


def started_line(script):
    return next(line for line in script.splitlines() if line.startswith("setsid ") and "orch-env" in line)


def test_with_args_the_kinds_own_fields_still_reach_its_program():
    redis = render_job(parse_job("service:\n  name: redis\n  maxmemory: 64mb\n  args: [/etc/redis.conf, --loglevel, warning]\n"))
    assert started_line(redis).endswith('redis-server /etc/redis.conf --loglevel warning --include "$ORCH_RUN_DIR/state/redis.conf" &')
    # orch's config then holds the recipe's own fields only: the args' config file keeps the rest
    assert "<<'ORCH_EOF'\nmaxmemory 64mb\nORCH_EOF" in redis
    chroma = render_job(parse_job("service:\n  name: chroma\n  persist_directory: /d\n  ports: [8001]\n  args: [run]\n"))
    assert started_line(chroma).endswith("chroma run --path /d --port 8001 &")
    prometheus = render_job(parse_job("service:\n  name: prometheus\n  retention_time: 2d\n  scrape_interval: 5s\n"
                                      "  args: [--log.level=warn]\n"))
    assert started_line(prometheus).endswith('prometheus --log.level=warn --config.file="$ORCH_RUN_DIR/state/prometheus.yml" '
                                            "--storage.tsdb.retention.time=2d &")
    # mysql and postgres: the data directory and socket orch sets up, checks and bootstraps
    mysql = render_job(parse_job("service:\n  name: mysql\n  args: [--skip-name-resolve]\n"))
    assert started_line(mysql).endswith('mysqld --skip-name-resolve --datadir="$ORCH_RUN_DIR/mysql-data" '
                                        '--socket="${TMPDIR:-/tmp}/orch-$ORCH_JOB.sock" &')
    postgres = render_job(parse_job("service:\n  name: postgres\n  shared_buffers: 64MB\n  args: [-c, work_mem=8MB]\n"))
    assert started_line(postgres).endswith('postgres -c work_mem=8MB -D "$ORCH_RUN_DIR/postgres-data" '
                                           '-c unix_socket_directories="$ORCH_PG_SOCKETS" '
                                           '-c hba_file="$ORCH_RUN_DIR/state/pg_hba.conf" -c shared_buffers=64MB &')


def test_args_naming_what_orch_would_add_are_left_as_they_are():
    from conftest import ROOT

    seed = render_job(load_job(ROOT / "tests/recipes/seed_mysql.yaml"))
    line = started_line(seed)
    assert line.count("--datadir=") == 1 and line.count("--socket=") == 1 and "--port=3306" in line
    # another program than the kind's (a stand-in, a wrapper) gets its args and nothing else
    sleeper = render_job(parse_job("service:\n  name: redis\n  ports: [7000]\n  command: sleep\n  args: [\"300\"]\n"))
    assert started_line(sleeper).endswith(" sleep 300 &")
