"""Where a job may run: nodelist, exclude and constraint, checked as SLURM reads them and rendered as #SBATCH lines.

The accepted and refused constraints were probed on the test cluster with
``sbatch --test-only --constraint=...`` against a node given the features
fa, fb, fc (slurm-wlm 22.05): every value refused there is refused here, with
the line and field of the recipe. A few values SLURM lets through but which read
like slips (``a|``, ``a,b``, ``a*1*2``) are refused too.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import bash_syntax, directives, shellcheck
from orch import render_job
from orch.errors import RecipeError
from orch.recipe import parse_job
from strategies import HOSTILE

RECIPE = "service:\n  name: redis\n  resources:\n    time: \"00:10:00\"\n    %s: %s\n"


def problems_of(field, value):
    try:
        parse_job(RECIPE % (field, value), "r.yaml")
    except RecipeError as error:
        return [str(p) for p in error.problems]
    return []


# accepted by sbatch --test-only (22.05) on a node with features fa, fb, fc
SLURM_TAKES = ("fa", "fa&fb", "fa|fb", "[fa|fb]", "[fa*1&fb*1]", "fa*1", "fa*2", "fa*01", "(fa&fb)", "(fa|fb)", "(fa)*1",
               "fa&(fb|fc)", "[(fa|fb)*1&fc*1]", "[fa|fb]&fc", "fa&[fb|fc]", "fa&fb|fc", "(fa&fb)|fc", "[fa|(fb&fc)]",
               "[(fa|fb)|fc]", "[fa*1&(fb|fc)*2]", "[fa*1&fb*1]&fc", "(fa|fb)&(fb|fc)", "[(fa&fb)*1&fc*1]", "[fa]", "[(fa)]",
               "gpu_a100", "cpu-skylake", "ib.hdr", "nvme:2")
# refused by sbatch --test-only (22.05) on the same node: "Invalid feature specification"
SLURM_REFUSES = ("[fa&fb]", "fa&&fb", "&fa", "[fa", "fa]", "[[fa|fb]]", "[fa|fb]&[fa|fb]", "((fa))", "(fa", "fa)", "fa*0",
                 "fa*x", "()", "[]", "fa fb", "fa!fb", "!fa", "[fa|fb]*1", "[fa*1|fb*1]", "(fa*1&fb)", "[fa*1&fb]", "[fa*1|fb]",
                 "[(fa|fb)*1|fc]")
# let through by SLURM, refused here: they read like slips
SLIPS = ("fa|", "fa,fb", "fa*1*2")


@pytest.mark.parametrize("value", SLURM_TAKES)
def test_a_constraint_slurm_takes_is_accepted_and_rendered_as_written(value):
    job = parse_job(RECIPE % ("constraint", '"%s"' % value), site="local")
    assert job.resources.constraint == value
    assert directives(render_job(job))["constraint"] == value


@pytest.mark.parametrize("value", SLURM_REFUSES + SLIPS)
def test_a_constraint_slurm_refuses_is_a_problem_at_its_line(value):
    found = problems_of("constraint", '"%s"' % value)
    assert len(found) == 1 and found[0].startswith("r.yaml:5: service.resources.constraint: %r: " % value), found


@pytest.mark.parametrize("value,words", [
    ("[fa&fb]", "inside brackets, & needs a count on every feature"),
    ("[fa|fb]&[fc|fd]", "one set of brackets"),
    ("((fa))", "parentheses do not nest"),
    ("fa,fb", "& is AND, | is OR"),
    ("fa*0", "a count is at least 1"),
    ("[fa*1|fb*1]", "| (matching OR) takes no counts"),
])
def test_a_refused_constraint_says_what_slurm_wants_instead(value, words):
    assert words in problems_of("constraint", '"%s"' % value)[0]


@pytest.mark.parametrize("value", ("vm", "node[1-3],gpu01", "n[01-04,7]", "rack[0-1]-node[0-3]", "a.b-c_d", "n[1]"))
@pytest.mark.parametrize("field", ("nodelist", "exclude"))
def test_a_host_list_is_accepted_and_rendered_as_written(field, value):
    job = parse_job(RECIPE % (field, '"%s"' % value), site="local")
    assert getattr(job.resources, field) == value
    assert directives(render_job(job))[field] == value


@pytest.mark.parametrize("value,words", [
    ("node[3-1]", "has a range that runs backwards (3-1)"),
    ("a,,b", "has an empty entry"),
    ("a,", "has an empty entry"),
    ("node[1-]", "is not a SLURM host list"),
    ("node[a-b]", "is not a SLURM host list"),
    ("node[1-3", "is not a SLURM host list"),
    ("-n1", "is not a SLURM host list"),
    ("/etc/hosts", "is not a SLURM host list"),  # sbatch would read a file of names: not through a recipe
    ("n1 n2", "is not a SLURM host list"),
    ("", "must not be empty"),
])
@pytest.mark.parametrize("field", ("nodelist", "exclude"))
def test_a_bad_host_list_is_a_problem_at_its_line(field, value, words):
    found = problems_of(field, '"%s"' % value)
    assert len(found) == 1 and found[0].startswith("r.yaml:5: service.resources.%s: " % field) and words in found[0], found


def test_a_node_both_listed_and_excluded_is_a_problem_at_the_exclude_line():
    text = "service:\n  name: redis\n  resources:\n    nodelist: \"n[1-4]\"\n    exclude: \"n[04-06],n3\"\n"
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "r.yaml:5: service.resources.exclude: n3 is in nodelist too: a job cannot both need and avoid a node"]
    # zero-padded names are other names: n04 is not n4
    assert parse_job(text.replace(",n3", ""), "r.yaml").resources.exclude == "n[04-06]"


def test_every_problem_of_a_resources_block_is_reported_at_once():
    text = "service:\n  name: redis\n  resources:\n    nodelist: \"a b\"\n    exclude: \"x[2-1]\"\n    constraint: \"[a&b]\"\n"
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml")
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (4, "service.resources.nodelist"), (5, "service.resources.exclude"), (6, "service.resources.constraint")]


@pytest.mark.parametrize("field", ("nodelist", "exclude", "constraint"))
# ORCH_EOF is hostile to a heredoc only: as a host or feature name it is a fine one
@pytest.mark.parametrize("value", [v for v in HOSTILE if v and v != "ORCH_EOF"])
def test_hostile_values_never_reach_a_directive(field, value):
    import json

    text = RECIPE % (field, json.dumps(value))
    with pytest.raises(RecipeError) as caught:
        parse_job(text, "r.yaml")
    assert [(p.line, p.field) for p in caught.value.problems] == [(5, "service.resources.%s" % field)]


host_lists = st.lists(
    st.builds(lambda name, ranges: name + ("[%s]" % ",".join("%d-%d" % (a, a + b) for a, b in ranges) if ranges else ""),
              st.from_regex(r"[a-z][a-z0-9_.-]{0,8}", fullmatch=True),
              st.lists(st.tuples(st.integers(0, 99), st.integers(0, 20)), max_size=3)),
    min_size=1, max_size=4).map(",".join)


@settings(max_examples=40)
@given(host_lists, st.sampled_from(("nodelist", "exclude")), st.sampled_from(("apptainer", "host")))
def test_generated_host_lists_reach_the_header_as_written_and_the_script_stays_clean(hosts, field, runtime):
    job = parse_job(RECIPE % (field, '"%s"' % hosts), site="local", runtime=runtime)
    script = render_job(job)
    assert directives(script)[field] == hosts
    assert bash_syntax(script) == "" and shellcheck(script) == ""
