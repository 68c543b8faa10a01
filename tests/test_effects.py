"""The effects layer and the lifecycle with a fake runner: parsing, errors, state mapping (no processes)."""
import pytest

from orch.lifecycle import SlurmJob, orch_state, parse_scontrol, parse_squeue, reconcile
from orch.argv import parse_job_id, parse_remote, ssh_argv
from orch.effects.process import Completed
from orch.effects.scheduler import accounted_job, queue, submit
from orch.errors import LoginUnreachable, SubmissionError


def fake(*answers):
    """A runner answering each call with the next (exit code, stdout, stderr), recording the calls."""
    calls = []

    def runner(argv, input=None, remote=None, timeout=60):
        calls.append((tuple(argv), input, remote))
        code, out, err = answers[len(calls) - 1]
        return Completed(argv=tuple(argv), exit_code=code, stdout=out, stderr=err)

    runner.calls = calls
    return runner


@pytest.mark.parametrize("stdout,job_id", [("12\n", "12"), ("4242;meluxina\n", "4242"), ("", None), ("Submitted batch job 7\n", None),
                                           ("warning: x\n99\n", "99")])
def test_parse_job_id(stdout, job_id):
    assert parse_job_id(stdout) == job_id


def test_submit_puts_the_script_on_stdin():
    runner = fake((0, "31\n", ""))
    assert submit("#!/bin/bash\ntrue\n", runner=runner) == "31"
    assert runner.calls == [(("sbatch", "--parsable"), "#!/bin/bash\ntrue\n", None)]


@pytest.mark.parametrize("answer", [
    (1, "", "sbatch: error: invalid partition specified: nosuch\nsbatch: error: Batch job submission failed: Invalid partition name specified\n"),
    (0, "garbage\n", ""),
    (127, "", "sbatch: command not found"),
])
def test_submit_failures_carry_slurms_own_words(answer):
    with pytest.raises(SubmissionError) as caught:
        submit("x", runner=fake(answer))
    assert str(caught.value).startswith("sbatch: ")
    last_words = (answer[2] or answer[1]).strip().splitlines()[-1]
    assert last_words in str(caught.value)


def test_queue_parses_every_state_and_keeps_reasons():
    text = "40|PENDING||0:00|Priority\n43|RUNNING|vm|1:02|None\n44_3|COMPLETED|vm|0:05|None\n"
    jobs = queue(runner=fake((0, text, "")))
    assert jobs["40"].reason == "Priority" and jobs["43"].node == "vm" and jobs["44_3"].state == "COMPLETED"


def test_sacct_without_accounting_falls_back_to_scontrol():
    runner = fake((1, "", "Slurm accounting storage is disabled\n"),
                  (0, "JobId=5 JobName=x JobState=TIMEOUT Reason=TimeLimit NodeList=vm RunTime=00:02:00 ExitCode=0:9\n", ""))
    job = accounted_job("5", runner=runner)
    assert (job.state, job.node, job.exit_code) == ("TIMEOUT", "vm", "0:9")
    assert [call[0][0] for call in runner.calls] == ["sacct", "scontrol"]


def test_sacct_is_believed_where_accounting_exists():
    job = accounted_job("5", runner=fake((0, "5|OUT_OF_MEMORY|n7|00:10:00|0:125\n", "")))
    assert orch_state(job.state) == ("failed", "OUT_OF_MEMORY")


def test_ssh_argv_quotes_each_remote_word_and_reuses_the_connection():
    argv = ssh_argv(parse_remote("u100@login.lxp.lu:8822"), ("cat", "/a b/$HOME"), control_path="/home/u/.ssh/orch-%C")
    assert argv[0] == "ssh" and "ControlMaster=auto" in argv and ("-p", "8822") == argv[argv.index("-p"):argv.index("-p") + 2]
    assert argv[-3:] == ("u100@login.lxp.lu", "--", "cat '/a b/$HOME'")


@pytest.mark.parametrize("text", ["", "a b@host", "u@h:port", "host;rm"])
def test_bad_remote_is_refused(text):
    with pytest.raises(ValueError):
        parse_remote(text)


@pytest.mark.parametrize("slurm,expected", [
    ("PENDING", ("pending", "")), ("CONFIGURING", ("pending", "")), ("RUNNING", ("running", "")),
    ("COMPLETING", ("running", "")), ("COMPLETED", ("completed", "")), ("CANCELLED by 0", ("cancelled", "")),
    ("FAILED", ("failed", "FAILED")), ("TIMEOUT", ("failed", "TIMEOUT")), ("NODE_FAIL", ("failed", "NODE_FAIL")),
    ("OUT_OF_MEMORY", ("failed", "OUT_OF_MEMORY")), ("PREEMPTED", ("failed", "PREEMPTED")),
])
def test_slurm_states_map_onto_orchs_lifecycle(slurm, expected):
    assert orch_state(slurm) == expected


def test_reconcile_prefers_the_jobs_own_words_for_a_failure():
    view = SlurmJob(job_id="1", state="FAILED")
    assert reconcile("running", view, {"exit_code": 1, "reason": "redis not ready after 3 checks in 4 s"}) == (
        "failed", "redis not ready after 3 checks in 4 s")
    timeout = SlurmJob(job_id="1", state="TIMEOUT")
    assert reconcile("running", timeout, {"exit_code": 143, "reason": "TIMEOUT: time limit reached"}) == (
        "failed", "TIMEOUT: time limit reached")
    assert reconcile("running", SlurmJob(job_id="1", state="NODE_FAIL"), {"exit_code": 1, "reason": "x"}) == ("failed", "NODE_FAIL: x")


def test_reconcile_keeps_terminal_states_and_pending_reasons():
    assert reconcile("completed", SlurmJob(job_id="1", state="RUNNING"), None) == ("completed", None)
    assert reconcile("submitted", SlurmJob(job_id="1", state="PENDING", reason="Resources"), None) == ("pending", "Resources")
    assert reconcile("running", None, None) == ("running", None)


def test_scontrol_line_with_spaces_in_values():
    job = parse_scontrol("JobId=9 JobName=my job | x JobState=RUNNING Reason=None NodeList=vm RunTime=00:00:03 ExitCode=0:0")
    assert (job.state, job.node, job.reason) == ("RUNNING", "vm", "")
    assert parse_scontrol("slurm_load_jobs error: Invalid job id specified") is None
    assert parse_squeue("garbage\n") == {}


def test_ssh_failure_is_login_unreachable(monkeypatch, tmp_path):
    from orch.effects.process import run

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ORCH_SSH_CONFIG", "/dev/null")
    with pytest.raises(LoginUnreachable) as caught:
        run(("true",), remote=parse_remote("nobody@127.0.0.1:1"), timeout=20)
    assert str(caught.value).startswith("ssh nobody@127.0.0.1: ")
