"""Recipes in, Job records out: the seed's format loads, bad input names file, line and field."""
import pytest

from conftest import SEED_STYLE, SHIPPED
from orch.errors import RecipeError
from orch.recipe import load_job, parse_job
from orch.sweep import Sweep, combinations


@pytest.mark.parametrize("path", SHIPPED + SEED_STYLE, ids=lambda p: p.name)
def test_every_shipped_and_seed_style_recipe_loads(path):
    job = load_job(path)
    assert job.role in ("service", "client")
    assert job.run_dir == "orch-runs/%s_%s" % (job.name, job.id)


def test_flow_style_lists_load_as_lists():
    job = load_job(SEED("seed_mysql.yaml"))
    assert job.command == "mysqld"
    assert list(job.args) == ["--datadir=/mysql/data", "--socket=/mysql/run/mysqld.sock", "--bind-address=0.0.0.0", "--user=mysql"]
    assert list(job.container.bind_mounts) == ["/scratch/users/u100/mysql:/mysql"]
    assert job.container.force_rebuild is True


def test_seed_environment_settings_become_kind_fields():
    job = load_job(SEED("seed_mysql.yaml"))
    assert job.settings["root_password"] == "rootsecret"
    assert job.settings["database"] == "bench_db"
    assert job.settings["user"] == "bench_user"


def test_explicit_kind_field_wins_over_the_seed_environment_variable():
    job = parse_job(SERVICE % "  name: redis\n  persistence: aof\n  environment:\n    REDIS_PERSISTENCE: none\n")
    assert job.settings["persistence"] == "aof"


def test_monitoring_block_is_a_prometheus_service():
    job = load_job(SEED("seed_mysql.yaml"), part="monitoring")
    assert job.kind == "prometheus" and job.settings["retention_time"] == "15d"


def test_decorated_and_parametric_names_select_their_kind():
    assert load_job(SEED("seed_chroma_hd.yaml")).kind == "chroma_benchmark"
    assert load_job(SEED("seed_redis_parametric.yaml")).kind == "redis_benchmark"
    assert load_job(SEED("seed_ollama_parametric.yaml")).kind == "ollama_benchmark"


def test_seed_parameter_names_map_onto_orch_names():
    job = load_job(SEED("seed_redis_parametric.yaml"))
    assert job.parameters["clients"] == Sweep((1, 10, 50))
    assert job.parameters["data_size"] == Sweep((64, 1024))
    assert job.parameters["pipeline"] == Sweep((1, 16))
    assert job.parameters["requests"] == Sweep((100000,))
    assert job.parameters["tests"] == ("set", "get", "lpush")
    assert len(combinations(job)) == 12


def test_client_target_comes_from_target_service_and_its_kind():
    job = load_job(SEED("seed_chroma_hd.yaml"))
    assert (job.target.name, job.target.kind, job.target.wait) == ("chroma", "chroma", 120)
    # the seed's v1 heartbeat path is the recipe's word; Chroma 1.x's v2 path is tried too
    assert job.target.health_paths == ("/api/v1/heartbeat", "/api/v2/heartbeat")


def test_target_endpoint_url_is_split_into_host_and_port():
    job = parse_job(CLIENT % "  name: ollama_benchmark\n  target_endpoint: http://mel2073:11434\n")
    assert (job.target.host, job.target.port) == ("mel2073", 11434)


def test_default_id_follows_the_content_and_id_overrides_it():
    a = parse_job(SERVICE % "  name: redis\n")
    b = parse_job(SERVICE % "  name: redis\n  description: other\n")
    assert a.id != b.id and len(a.id) == 8
    assert parse_job(SERVICE % "  name: redis\n", job_id="run7").job_name == "redis_run7"


SERVICE = "service:\n%s"
CLIENT = "client:\n%s"


def SEED(name):
    from conftest import ROOT

    return ROOT / "tests" / "recipes" / name


# (id, recipe text, line, field, words in the message)
INVALID = [
    ("unknown-kind", SERVICE % "  name: nosuchkind\n", 2, "service.name", "unknown service kind 'nosuchkind'"),
    ("client-kind-as-service", SERVICE % "  name: redis_benchmark\n", 2, "service.name", "unknown service kind"),
    ("unknown-field", SERVICE % "  name: redis\n  colour: blue\n", 3, "service.colour", "unknown field"),
    ("unknown-resource", SERVICE % "  name: redis\n  resources:\n    gpus: 1\n", 4, "service.resources.gpus", "unknown field"),
    ("nodes-not-a-number", SERVICE % "  name: redis\n  resources:\n    nodes: two\n", 4, "service.resources.nodes", "whole number"),
    ("nodes-zero", SERVICE % "  name: redis\n  resources:\n    nodes: 0\n", 4, "service.resources.nodes", "out of range"),
    ("port-too-big", SERVICE % "  name: redis\n  ports:\n    - 70000\n", 4, "service.ports[0]", "out of range (1-65535)"),
    ("port-zero", SERVICE % "  name: redis\n  ports: [0]\n", 3, "service.ports[0]", "out of range"),
    ("fractional-mem", SERVICE % "  name: redis\n  resources:\n    mem: 4.5G\n", 4, "service.resources.mem", "SLURM memory size"),
    ("gib-mem", SERVICE % "  name: redis\n  resources:\n    mem: 4GiB\n", 4, "service.resources.mem", "SLURM memory size"),
    ("bad-time", SERVICE % "  name: redis\n  resources:\n    time: 1 hour\n", 4, "service.resources.time", "SLURM time limit"),
    ("bad-gres", SERVICE % "  name: redis\n  resources:\n    gres: gpu=1\n", 4, "service.resources.gres", "gres"),
    ("partition-with-space", SERVICE % "  name: redis\n  resources:\n    partition: cpu gpu\n", 4, "service.resources.partition", "plain partition"),
    ("account-injection", SERVICE % "  name: redis\n  resources:\n    account: p1;rm\n", 4, "service.resources.account", "plain account"),
    ("env-name-not-identifier", SERVICE % "  name: redis\n  environment:\n    MY-VAR: x\n", 4, "service.environment.MY-VAR", "shell variable name"),
    ("env-name-starts-with-digit", SERVICE % "  name: redis\n  environment:\n    1X: x\n", 4, "service.environment.1X", "shell variable name"),
    ("bool-not-bool", SERVICE % "  name: redis\n  enable_cadvisor: maybe\n", 3, "service.enable_cadvisor", "true or false"),
    ("bad-persistence", SERVICE % "  name: redis\n  persistence: sometimes\n", 3, "service.persistence", "not one of"),
    ("bad-seed-env-setting", SERVICE % "  name: redis\n  environment:\n    REDIS_PERSISTENCE: sometimes\n", 4,
     "service.environment.REDIS_PERSISTENCE", "not one of"),
    ("health-retries-zero", SERVICE % "  name: redis\n  health_check:\n    retries: 0\n", 4, "service.health_check.retries", "out of range"),
    ("missing-name", SERVICE % "  description: x\n", 1, "service.name", "is required"),
    ("both-roles", "service:\n  name: redis\nclient:\n  name: redis_benchmark\n", 1, "", "both service: and client:"),
    ("neither-role", "services:\n  name: redis\n", 1, "services", "unknown top-level block"),
    ("not-yaml", "service: [\n", 2, "", "not a valid recipe"),
    ("duplicate-key", SERVICE % "  name: redis\n  name: chroma\n", 3, "", "not a valid recipe"),
    ("sweep-garbage", CLIENT % "  name: redis_benchmark\n  parameters:\n    clients: \"1,x,3\"\n", 4,
     "client.parameters.clients", "whole numbers separated by commas"),
    ("sweep-zero", CLIENT % "  name: redis_benchmark\n  parameters:\n    clients: [1, 0]\n", 4, "client.parameters.clients", "out of range"),
    ("unknown-parameter", CLIENT % "  name: redis_benchmark\n  parameters:\n    turbo: 1\n", 4, "client.parameters.turbo", "unknown field"),
    ("parameter-twice", CLIENT % "  name: redis_benchmark\n  parameters:\n    clients: 5\n    client_counts: 1,2\n", 5,
     "client.parameters.client_counts", "given twice"),
    ("sweep-and-parameter", CLIENT % "  name: redis_benchmark\n  parameters:\n    clients: 5\n  sweep:\n    clients: [1, 2]\n", 6,
     "client.sweep.clients", "also set in parameters"),
    ("sweep-unknown", CLIENT % "  name: redis_benchmark\n  sweep:\n    turbo: [1, 2]\n", 4, "client.sweep.turbo", "unknown field"),
    ("bad-target-url", CLIENT % "  name: ollama_benchmark\n  target_endpoint: mel2073:11434\n", 3, "client.target_endpoint", "URL"),
    ("prometheus-target-without-host", SERVICE % "  name: prometheus\n  monitoring_targets:\n    - job_name: x\n      port: 80\n", 4,
     "service.monitoring_targets[0].service_id", "exactly one"),
    ("ollama-model-injection", SERVICE % "  name: ollama\n  model: \"x\\\"; rm -rf /\"\n", 3, "service.model", "Ollama model name"),
    ("mysql-database-injection", SERVICE % "  name: mysql\n  database: \"db`; drop\"\n", 3, "service.database", "plain name"),
]


@pytest.mark.parametrize("text,line,field,words", [row[1:] for row in INVALID], ids=[row[0] for row in INVALID])
def test_errors_name_the_file_line_and_field(text, line, field, words):
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml")
    problems = caught.value.problems
    assert any(p.line == line and p.field == field and words in p.message for p in problems), problems
    assert all(str(p).startswith("r.yaml:") for p in problems)


# what orch refuses so that no field is accepted and then left without effect, and no variable of orch's,
# Apptainer's or bash's is set by a recipe: (block, case, its fields, line, field under the block, words)
REFUSED = [
    ("service", "env-readonly-bash", "  name: redis\n  environment:\n    SHELLOPTS: x\n", 4, "environment.SHELLOPTS", "bash's own"),
    ("service", "env-apptainer-setting", "  name: redis\n  environment:\n    APPTAINER_BINDPATH: /x\n",
     4, "environment.APPTAINER_BINDPATH", "Apptainer's own setting"),
    ("client", "env-target-of-a-client", "  name: redis_benchmark\n  environment:\n    TARGET_HOST: h\n",
     4, "environment.TARGET_HOST", "orch sets it from the client's target"),
    ("client", "client-ports", "  name: redis_benchmark\n  ports: [6379]\n", 3, "ports", "listens on no port"),
    ("client", "client-health-check", "  name: redis_benchmark\n  health_check:\n    timeout: 5\n",
     3, "health_check", "target_service.health_check_endpoint"),
    ("service", "second-port", "  name: redis\n  ports:\n    - 6379\n    - 6380\n", 5, "ports[1]", "one port"),
    ("service", "init-script-on-redis", "  name: redis\n  init_script: FLUSHALL\n", 3, "init_script", "mysql and postgres"),
    ("client", "prompts-and-prompts-file", "  name: ollama_benchmark\n  parameters:\n    prompts: [a]\n    prompts_file: p.txt\n",
     5, "parameters.prompts_file", "also given as prompts"),
    ("service", "storage-path-not-absolute", "  name: prometheus\n  environment:\n    PROMETHEUS_STORAGE_PATH: data\n",
     4, "environment.PROMETHEUS_STORAGE_PATH", "absolute path"),
    ("service", "redis-args-set-maxmemory-too", "  name: redis\n  maxmemory: 1gb\n  args: [\"--maxmemory\", \"2gb\"]\n",
     4, "args", "'--maxmemory' sets what maxmemory sets"),
    ("service", "seed-env-setting-and-args", "  name: redis\n  environment:\n    REDIS_PERSISTENCE: aof\n  args: [--appendonly, \"no\"]\n",
     5, "args", "'--appendonly' sets what persistence sets"),
    ("service", "prometheus-own-config", "  name: prometheus\n  scrape_interval: 5s\n  args: [--config.file=/etc/p.yml]\n",
     4, "args", "'--config.file' sets what scrape_interval sets"),
    ("service", "chroma-path-twice", "  name: chroma\n  persist_directory: /d\n  args: [run, --path, /e]\n",
     4, "args", "'--path' sets what persist_directory sets"),
    ("service", "postgres-c-option", "  name: postgres\n  max_connections: 50\n  args: [-c, max_connections=80]\n",
     4, "args", "'-c max_connections' sets what max_connections sets"),
    ("service", "args-to-another-program", "  name: redis\n  command: numactl\n  args: [redis-server]\n  persistence: aof\n",
     4, "args", "run as given by 'numactl', not redis-server: persistence would not take effect"),
]


@pytest.mark.parametrize("block, case, fields, line, field, words", REFUSED, ids=[row[1] for row in REFUSED])
def test_fields_that_would_do_nothing_or_break_orch_are_refused_at_their_line(block, case, fields, line, field, words):
    with pytest.raises(RecipeError) as caught:
        parse_job((SERVICE if block == "service" else CLIENT) % fields, "r.yaml")
    wanted = "%s.%s" % (block, field)
    assert any(p.line == line and p.field == wanted and words in p.message for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_not_just_the_first():
    text = SERVICE % "  name: redis\n  ports: [0]\n  resources:\n    mem: 4.5G\n    time: soon\n  colour: red\n"
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml")
    assert [p.line for p in caught.value.problems] == [3, 5, 6, 7]


def test_problems_of_every_stage_are_reported_together():
    text = (CLIENT % "  name: redis_benchmark\n  colour: red\n  environment:\n    1X: a\n    ORCH_X: b\n"
            "  target_endpoint: http://h:99999\n  parameters:\n    clients: \"1,x,3\"\n    client_counts: 5\n"
            "  sweep:\n    clients: [1, 2]\n")
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml", site="nowhere", run_dir="a b")
    # the site's problem is reported against the site (nowhere:0: --site: ...), before the file's
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (0, "--site"), (0, "--run-dir"),
        (3, "client.colour"),                           # the schema
        (5, "client.environment.1X"),                   # the schema; the mapping's other names are still checked
        (6, "client.environment.ORCH_X"),               # a reserved name
        (7, "client.target_endpoint"),                  # its port
        (9, "client.parameters.clients"),               # a value
        (10, "client.parameters.client_counts"),        # a name given twice, whatever its value
        (12, "client.sweep.clients"),                   # in parameters and sweep
    ]


def test_seed_environment_settings_are_checked_with_everything_else():
    text = SERVICE % "  name: redis\n  ports: [0]\n  environment:\n    REDIS_PERSISTENCE: sometimes\n    9X: y\n"
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml")
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (3, "service.ports[0]"), (5, "service.environment.REDIS_PERSISTENCE"), (6, "service.environment.9X")]


def test_init_script_is_for_the_kinds_that_run_it():
    for kind in ("mysql", "postgres"):
        assert parse_job(SERVICE % ("  name: %s\n  init_script: SELECT 1;\n" % kind)).init_script == "SELECT 1;"


def test_a_swept_parameter_the_load_generator_never_gets_is_refused():
    from orch import schema
    from orch.kinds import register
    from orch.kinds.client import client_kind

    kinds = register(client_kind("labelled", target="redis", summary="a label it does not pass on",
                                 parameters={"clients": schema.Numbers(1), "labels": schema.TextList()}, flags={"clients": "-c"}))
    text = CLIENT % "  name: labelled\n  sweep:\n    labels: [a, b]\n    clients: [1, 2]\n"
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml", kinds=kinds)
    assert [(p.line, p.field) for p in caught.value.problems] == [(4, "client.sweep.labels")]
    assert "identical tasks" in caught.value.problems[0].message
    # a recipe's own program reads every value (ORCH_PARAM_LABELS): nothing identical there
    assert parse_job(text.replace("  sweep:", "  command: mine\n  sweep:"), kinds=kinds).parameters["labels"] == ("a", "b")


def test_unknown_kind_still_reports_the_other_problems():
    with pytest.raises(RecipeError) as caught:
        parse_job(SERVICE % "  name: nosuch\n  ports: [0]\n", "r.yaml")
    assert {p.field for p in caught.value.problems} == {"service.name", "service.ports[0]"}


def test_run_dir_that_would_break_an_sbatch_line_is_refused():
    with pytest.raises(RecipeError) as caught:
        parse_job(SERVICE % "  name: redis\n", "r.yaml", run_dir="runs/a b%j")
    assert caught.value.problems[0].field == "--run-dir"


def test_unreadable_file_is_a_recipe_error(tmp_path):
    with pytest.raises(RecipeError) as caught:
        load_job(tmp_path / "missing.yaml")
    assert "cannot read the recipe" in str(caught.value)


def test_records_are_immutable():
    job = parse_job(SERVICE % "  name: redis\n")
    with pytest.raises(AttributeError):
        job.name = "other"
    assert job.set(name="other").name == "other" and job.name == "redis"


def test_an_id_that_would_escape_the_run_directory_is_refused():
    with pytest.raises(RecipeError) as caught:
        parse_job(SERVICE % "  name: redis\n", "r.yaml", job_id="../x")
    assert caught.value.problems[0].field == "--id"


def test_a_decorated_parametric_client_name_is_the_client_not_the_service():
    job = parse_job(CLIENT % "  name: redis_parametric_benchmark_hd\n")
    assert (job.kind, job.name) == ("redis_benchmark", "redis_parametric_benchmark_hd")
    with pytest.raises(RecipeError, match="unknown service kind 'redis_parametric_benchmark_hd'"):
        parse_job(SERVICE % "  name: redis_parametric_benchmark_hd\n")


def test_rendering_the_monitoring_block_checks_the_whole_file():
    text = "service:\n  name: redis\n  persistence: sometimes\nmonitoring:\n  name: prometheus\n"
    for part in (None, "monitoring"):
        with pytest.raises(RecipeError) as caught:
            parse_job(text, "r.yaml", part=part)
        assert [(p.line, p.field) for p in caught.value.problems] == [(3, "service.persistence")], part
    broken_monitoring = "service:\n  name: redis\nmonitoring:\n  name: prometheus\n  retention_time: soon\n"
    for part in (None, "monitoring"):
        with pytest.raises(RecipeError) as caught:
            parse_job(broken_monitoring, "r.yaml", part=part)
        assert [(p.line, p.field) for p in caught.value.problems] == [(5, "monitoring.retention_time")], part
    assert parse_job("service:\n  name: redis\nmonitoring:\n  name: prometheus\n", part="monitoring").kind == "prometheus"
