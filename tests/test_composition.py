"""The README's custom service: composed from section functions, rendered, and usable as a CLI plugin."""
import os
import re
import subprocess
import sys

from conftest import ROOT, bash_syntax, directives, shellcheck


def readme_example():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Composing a service", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_memcached_example_renders_a_valid_script():
    namespace = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    script = namespace["script"]
    assert directives(script)["mem"] == "2G"
    assert 'memcached --port 11211 --listen "${ORCH_BIND-}" --memory-limit 1024 &' in script
    assert "apptainer pull --force \"$ORCH_NEW\" docker://memcached:1.6-alpine" in script
    assert bash_syntax(script) == "" and shellcheck(script) == ""


def test_the_sections_written_out_give_the_same_script():
    import orch
    from orch import sections as s

    namespace = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    job, memcached, answers = namespace["job"], namespace["memcached"], namespace["answers"]
    port = lambda job: s.service_port(job, 11211)  # noqa: E731
    written_out = [
        s.header, s.preamble, s.modules, s.environment, s.image("docker://memcached:1.6-alpine"),
        s.setup_script, s.start(memcached), s.sidecars, s.health(answers), s.publish(port), s.wait_service,
    ]
    assert orch.render(job, written_out) == namespace["script"]


def test_plugin_kinds_render_from_the_cli(tmp_path):
    (tmp_path / "mymodule.py").write_text(readme_example())
    (tmp_path / "memcached.yaml").write_text("service:\n  name: memcached\n  ports: [11300]\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(tmp_path), str(ROOT))))
    result = subprocess.run(
        [sys.executable, "-m", "orch", "--plugin", "mymodule:MEMCACHED", "render", "memcached.yaml", "--no-mkdir"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "memcached --port 11300" in result.stdout


def test_unknown_plugin_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "orch", "--plugin", "nosuchmodule:X", "list"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60,
    )
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
