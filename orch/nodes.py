"""SLURM's node selection syntax, checked before it reaches an ``#SBATCH`` line: host lists and constraints (pure).

``nodelist`` and ``exclude`` take a host list (``node[01-04,7],gpu01``);
``constraint`` takes a feature expression (``gpu&nvme``, ``[rack1|rack2]``,
``[(a|b)*1&c*2]``). Each checker returns None for a value SLURM reads as meant,
or one sentence saying what is wrong. The rules for constraints were taken
from what slurmctld 22.05 accepts (probed with ``sbatch --test-only`` on a node
with features), less the forms it tolerates but which read like mistakes: a
trailing operator (``a|``), a comma for AND, two counts (``a*1*2``).
"""
import re

__all__ = ("hostlist_problem", "expand_hostlist", "constraint_problem", "HOST_CHARS", "FEATURE")

# what a host name and a feature name may be made of: nothing sbatch or a shell would read
HOST_CHARS = r"A-Za-z0-9_.-"
FEATURE = r"[A-Za-z0-9_][A-Za-z0-9_.:-]*"
RANGE = r"\d+(?:-\d+)?"
BRACKETS = r"\[%s(?:,%s)*\]" % (RANGE, RANGE)
HOST = re.compile(r"(?:[%s]|%s)+" % (HOST_CHARS, BRACKETS))


def _hosts(text):
    """The host expressions of a host list: split at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return parts + [text[start:]]


def hostlist_problem(text):
    """None for a SLURM host list, else what is wrong with it.

    >>> hostlist_problem("node[1-3,7],gpu01") is None
    True
    >>> hostlist_problem("node[3-1]")
    "'node[3-1]' has a range that runs backwards (3-1)"
    """
    if not text:
        return "must not be empty"
    for host in _hosts(text):
        if not host:
            return "%r has an empty entry (two commas, or one at an end)" % text
        if not HOST.fullmatch(host) or not re.match(r"[A-Za-z0-9]", host):
            return ("%r is not a SLURM host list (names of letters, digits and _ . -, ranges in brackets: "
                    "node[01-04,7],gpu01)" % text)
        for low, high in re.findall(r"(\d+)-(\d+)", "".join(re.findall(BRACKETS, host))):
            if int(low) > int(high):
                return "%r has a range that runs backwards (%s-%s)" % (text, low, high)
    return None


def expand_hostlist(text, limit=4096):
    """The host names a valid host list stands for, in order; None when there are more than ``limit``.

    Zero-padded ranges keep their width, as SLURM's do.

    >>> expand_hostlist("n[08-10],gpu1")
    ('n08', 'n09', 'n10', 'gpu1')
    """
    names = []
    for host in _hosts(text):
        expanded = [""]
        for literal, ranges in re.findall(r"([^\[]*)(?:\[([^\]]*)\])?", host):
            choices = [literal + number for number in _numbers(ranges)] if ranges else [literal]
            expanded = [head + choice for head in expanded for choice in choices]
            if len(expanded) > limit:
                return None
        names.extend(expanded)
        if len(names) > limit:
            return None
    return tuple(names)


def _numbers(ranges):
    for piece in ranges.split(","):
        low, _, high = piece.partition("-")
        width = len(low)
        for number in range(int(low), int(high or low) + 1):
            yield "%0*d" % (width, number)


TOKEN = re.compile(r"%s|\*\w*|[&|()\[\]]|." % FEATURE, re.S)


def constraint_problem(text):
    """None for a constraint SLURM accepts, else what is wrong with it.

    >>> constraint_problem("[rack1|rack2]&gpu") is None
    True
    >>> constraint_problem("[a&b]")
    "'[a&b]': inside brackets, & needs a count on every feature ([a*2&b*1])"
    """
    if not text:
        return "must not be empty"
    tokens = TOKEN.findall(text)
    try:
        position = _expression(tokens, 0, outer=True)
        if position != len(tokens):
            left = tokens[position]
            raise _Bad("%r closes nothing" % left if left in (")", "]") else "%r is not allowed here (features joined by & or |)" % left)
    except _Bad as bad:
        return "%r: %s" % (text, bad.args[0])
    return None


class _Bad(Exception):
    pass


def _expression(tokens, position, outer=False, bracket=False):
    """Parse ``item (op item)*`` from ``position``; return where it ends.

    Outside brackets any mix of & and | is SLURM's; inside them, either a
    matching OR of plain items or an AND of counted ones, and one bracket per constraint.
    """
    items, operators, brackets = [], set(), 0
    while True:
        position, counted, was_bracket = _item(tokens, position, outer)
        items.append(counted)
        brackets += was_bracket
        if brackets > 1:
            raise _Bad("SLURM takes one set of brackets per constraint")
        if position < len(tokens) and tokens[position] in ("&", "|"):
            operators.add(tokens[position])
            position += 1
            if position == len(tokens) or tokens[position] in ("&", "|", ")", "]"):
                raise _Bad("%r needs a feature after it" % tokens[position - 1])
            continue
        if position < len(tokens) and tokens[position] == ",":
            raise _Bad("',' is no operator here: & is AND, | is OR")
        break
    if bracket:
        if operators == {"&", "|"}:
            raise _Bad("inside brackets, use only | (matching OR) or only & (counts)")
        if "|" in operators and any(items):
            raise _Bad("inside brackets, | (matching OR) takes no counts ([a|b])")
        if "&" in operators and not all(items):
            raise _Bad("inside brackets, & needs a count on every feature ([a*2&b*1])")
    return position


def _item(tokens, position, outer):
    """One feature, ``(group)`` or ``[group]``, with its count; ``(end, has a count, is a bracket)``."""
    if position == len(tokens):
        raise _Bad("it ends where a feature is expected")
    token = tokens[position]
    if token == "[":
        if position + 1 < len(tokens) and tokens[position + 1] == "]":
            raise _Bad("[ ] is empty")
        if not outer:
            raise _Bad("brackets go around the outside, not inside ( ) or [ ]")
        end = _expression(tokens, position + 1, bracket=True)
        if end == len(tokens) or tokens[end] != "]":
            raise _Bad("a [ is not closed")
        if end + 1 < len(tokens) and tokens[end + 1].startswith("*"):
            raise _Bad("a [group] takes no count: put counts inside it")
        return end + 1, False, True
    if token == "(":
        end = _group(tokens, position + 1)
        return _count(tokens, end + 1)
    if token.startswith("*"):
        raise _Bad("a count (%s) follows a feature" % token)
    if token in ("&", "|"):
        raise _Bad("%r needs a feature before it" % token)
    if token in (")", "]"):
        raise _Bad("%r closes nothing" % token)
    if not re.fullmatch(FEATURE, token):
        raise _Bad("%r is not allowed in a feature name (letters, digits and _ . : -)" % token)
    return _count(tokens, position + 1)


def _group(tokens, position):
    """Features joined by & or | up to a ``)``, no counts inside: SLURM's parentheses."""
    while True:
        if position == len(tokens) or not re.fullmatch(FEATURE, tokens[position]):
            if position < len(tokens) and tokens[position] == "(":
                raise _Bad("parentheses do not nest")
            raise _Bad("( ) holds features joined by & or |")
        position += 1
        if position < len(tokens) and tokens[position].startswith("*"):
            raise _Bad("counts go after the ( ), not inside: (a&b)*2")
        if position < len(tokens) and tokens[position] in ("&", "|"):
            position += 1
            continue
        if position < len(tokens) and tokens[position] == ")":
            return position
        raise _Bad("a ( is not closed")


def _count(tokens, position):
    if position < len(tokens) and tokens[position].startswith("*"):
        if not re.fullmatch(r"\*\d+", tokens[position]):
            raise _Bad("a count is * and a whole number (a*2), not %r" % tokens[position])
        if int(tokens[position][1:]) < 1:
            raise _Bad("a count is at least 1")
        if position + 1 < len(tokens) and tokens[position + 1].startswith("*"):
            raise _Bad("one count per feature")
        return position + 1, True, False
    return position, False, False
