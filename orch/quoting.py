"""The one place where recipe values meet the shell.

Every value that comes from a recipe reaches a script through this module.
A value becomes exactly one shell word: its literal text single-quoted, its
``$NAME`` / ``${NAME}`` references double-quoted so they expand at run time
and nothing else (no command substitution, backticks, globbing, word
splitting or second command) is ever interpreted.

>>> word("$HOME/containers/x.sif")
'"${HOME-}"/containers/x.sif'
>>> word("a b; rm -rf /")
"'a b; rm -rf /'"
>>> shell_line("echo", "$(id)", Raw('"$X"'))
'echo \\'$(id)\\' "$X"'
"""
import re
import shlex

__all__ = (
    "Raw",
    "Literal",
    "word",
    "literal",
    "shell_line",
    "sbatch_flag",
    "assignment",
    "heredoc",
    "is_identifier",
    "VARIABLE",
    "parts",
    "substituted",
    "parts_word",
)

VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# words the shell takes as they are: no quoting needed (shlex's safe set, less the comma)
BARE = re.compile(r"[\w@%+=:./-]+\Z", re.ASCII)
SBATCH_UNSAFE = re.compile(r"[\s#\"'\\]")


class Raw(str):
    """Shell text written by orch itself, passed through unquoted.

    Only orch's own code makes ``Raw`` values; recipe values never are.
    """

    __slots__ = ()


class Literal(str):
    """Text that must reach the command exactly, ``$`` and all: ``word`` single-quotes it whole.

    orch's own (a script handed to ``bash -c``), or a recipe value orch takes literally
    (a password given as an environment variable)."""

    __slots__ = ()


def literal(value):
    """Return ``value`` as one shell word in which nothing expands.

    >>> literal("$HOME")
    "'$HOME'"
    """
    return shlex.quote(str(value))


def _literal_part(text):
    # shlex.quote leaves "safe" text bare (a bare part next to "${X}" is fine); commas are
    # quoted too, since inside an array assignment shellcheck takes a bare one for a mistake
    if not text:
        return ""
    quoted = shlex.quote(text)
    return "'%s'" % text if quoted == text and "," in text else quoted


def word(value):
    """Return ``value`` as one shell word where only ``$NAME``/``${NAME}`` expand.

    >>> word("${SCRATCH}/db")
    '"${SCRATCH-}"/db'
    >>> word("")
    "''"
    >>> word("`id`")
    "'`id`'"
    """
    if type(value) is str:
        if BARE.match(value):  # the common case, checked first: rendering is mostly such words
            return value
    elif isinstance(value, Raw):
        return str(value)
    elif isinstance(value, Literal):
        return shlex.quote(str(value))
    text = str(value)
    if BARE.match(text):
        return text
    parts = []
    position = 0
    for match in VARIABLE.finditer(text):
        parts.append(_literal_part(text[position:match.start()]))
        # ${NAME-}: empty when unset, as plain ${NAME} would be, and shellcheck knows it is meant
        parts.append('"${%s-}"' % (match.group(1) or match.group(2)))
        position = match.end()
    parts.append(_literal_part(text[position:]))
    joined = "".join(parts)
    return joined if joined else "''"


def parts(value):
    """``value`` as ``(kind, text)`` parts: ``("text", literal)``, ``("var", NAME)``, or ``("raw", shell)``.

    A ``Literal`` is one text part and a ``Raw`` one shell part; otherwise each ``$NAME``/``${NAME}``
    is a variable part, as ``word`` reads it.

    >>> parts("${A}/x$B")
    (('var', 'A'), ('text', '/x'), ('var', 'B'))
    >>> parts(Literal("pa$x"))
    (('text', 'pa$x'),)
    """
    if isinstance(value, Literal):
        return (("text", str(value)),)
    if isinstance(value, Raw):
        return (("raw", str(value)),)
    text = str(value)
    found, position = [], 0
    for match in VARIABLE.finditer(text):
        if match.start() > position:
            found.append(("text", text[position:match.start()]))
        found.append(("var", match.group(1) or match.group(2)))
        position = match.end()
    if position < len(text):
        found.append(("text", text[position:]))
    return tuple(found)


def substituted(value, known):
    """The parts of ``value`` with each variable that ``known`` maps (NAME -> parts) replaced by its parts.

    Substituting parts, not text, keeps a literal ``$`` literal however the pieces meet.

    >>> substituted("${A}HOME", {"A": (("text", "$"),)})
    (('text', '$'), ('text', 'HOME'))
    """
    found = []
    for kind, text in parts(value):
        found.extend(known[text] if kind == "var" and text in known else ((kind, text),))
    return tuple(found)


def parts_word(found):
    """One shell word from parts: text single-quoted, variables ``"${NAME-}"``, shell parts as they are.

    >>> parts_word((("text", "$"), ("text", "HOME")))
    "'$HOME'"
    >>> print(parts_word((("var", "HOME"), ("text", "/x y"))))
    "${HOME-}"'/x y'
    """
    pieces, text = [], ""
    for kind, value in found + (("end", ""),):
        if kind == "text":
            text += value  # neighbouring texts are quoted as one
            continue
        pieces.append(_literal_part(text))
        text = ""
        pieces.append('"${%s-}"' % value if kind == "var" else value)
    return Raw("".join(pieces) or "''")


def shell_line(*words):
    """Return one command line: each argument one word, ``Raw`` ones verbatim.

    >>> shell_line("redis-cli", "-p", 6379, "ping")
    'redis-cli -p 6379 ping'
    """
    return " ".join(map(word, words))


def is_identifier(name):
    """True when ``name`` is a valid shell variable name.

    >>> is_identifier("OLLAMA_HOST"), is_identifier("1X"), is_identifier("A-B")
    (True, False, False)
    """
    return bool(IDENTIFIER.match(str(name)))


def assignment(name, value, export=False):
    """Return ``NAME=word`` (or ``export NAME=word``) for a validated name.

    >>> assignment("A", "$HOME/x y", export=True)
    'export A="${HOME-}"\\'/x y\\''
    """
    if not is_identifier(name):
        raise ValueError("not a shell identifier: %r" % (name,))
    prefix = "export " if export else ""
    quoted = word(value)
    if not isinstance(value, Raw) and BARE.match(quoted):
        # NAME=admin reads like a command to shellcheck (SC2209); NAME='admin' is plainly a string
        quoted = "'%s'" % quoted
    return "%s%s=%s" % (prefix, name, quoted)


def sbatch_flag(key, value):
    """Return one ``#SBATCH`` directive; ``True`` gives a bare flag.

    sbatch reads directive values without a shell, so they are validated
    upstream (recipe.py) rather than quoted; this refuses anything that could
    end the line or the directive.

    >>> sbatch_flag("mem", "4GB")
    '#SBATCH --mem=4GB'
    >>> sbatch_flag("exclusive", True)
    '#SBATCH --exclusive'
    """
    key = key.replace("_", "-")
    if value is True:
        return "#SBATCH --%s" % key
    text = str(value)
    if not text or SBATCH_UNSAFE.search(text):
        raise ValueError("unsafe #SBATCH value for --%s: %r" % (key, text))
    return "#SBATCH --%s=%s" % (key, text)


def heredoc(path_word, text, marker="ORCH_EOF"):
    """Return lines writing ``text`` verbatim to a file through a quoted heredoc.

    The marker is lengthened until no line of ``text`` equals it, so the
    text can never end the heredoc early; the quoted marker keeps bash from
    expanding anything inside.

    >>> heredoc(Raw('"$F"'), "a $B")
    ('cat > "$F" <<\\'ORCH_EOF\\'', 'a $B', 'ORCH_EOF')
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    while marker in lines:
        marker += "_"
    return ("cat > %s <<'%s'" % (word(path_word), marker),) + tuple(lines) + (marker,)
