"""Field specs: turn strictyaml nodes into plain values, collecting every problem.

strictyaml parses the document (with its line numbers and scalar types);
the specs here walk it field by field so that one bad field does not hide
the next. A spec's ``read(node, path)`` returns ``(value, problems)`` where
each problem is ``(line, path, message)``.
"""
import re

import strictyaml

from orch.sweep import Sweep

__all__ = (
    "Text",
    "Integer",
    "Boolean",
    "Numbers",
    "TextList",
    "Mapping",
    "EnvMapping",
    "ListOf",
    "OneOf",
    "read_document",
    "line_of",
    "key_line",
    "child",
    "keys_of",
)


def _ruamel(node):
    chunk = node._chunk
    return chunk.pointer.get(chunk._ruamelparsed)


def _line(node):
    """The 1-based line a node starts on, from ruamel's positions.

    strictyaml's own ``start_line`` drifts after some quoted scalars and for
    sequence items; the positions ruamel recorded while parsing, which
    strictyaml keeps, are right. A mapping or list value is placed on the
    line of its key.
    """
    try:
        chunk = node._chunk
        kind, index = chunk.pointer._indices[-1]
        parent = chunk.pointer.parent().get(chunk._ruamelparsed)
        if kind == "index":
            return parent.lc.item(index)[0] + 1
        key = index[0]
        if node.is_scalar():
            return parent.lc.value(key)[0] + 1
        return parent.lc.key(key)[0] + 1
    except Exception:  # the document root, or strictyaml's internals moved: its own count
        return getattr(node, "start_line", 0) or 0


def key_line(node, key):
    """The 1-based line of ``key`` in the mapping ``node``."""
    try:
        return _ruamel(node).lc.key(key)[0] + 1
    except Exception:
        return _line(node)


line_of = _line


def child(node, key):
    """The value node of ``key`` in the mapping ``node``, or None (also when ``node`` is None or no mapping)."""
    for child_key, value in node.items() if node is not None and node.is_mapping() else ():
        if child_key.data == key:
            return value
    return None


def keys_of(node):
    """The keys of the mapping ``node`` (none for anything else)."""
    return [key.data for key, _ in node.items()] if node is not None and node.is_mapping() else []


def _show(node):
    data = node.data
    return repr(data) if not isinstance(data, (dict, list)) else type(data).__name__


class Text:
    """A scalar string, optionally matching a regex or one of some choices.

    + check: ``text -> None or message``, for a syntax no regex says well (a SLURM constraint)
    """

    def __init__(self, pattern=None, choices=None, hint=None, allow_empty=True, check=None):
        self.pattern = re.compile(pattern) if pattern else None
        self.choices = tuple(choices) if choices else None
        self.hint = hint
        self.allow_empty = allow_empty
        self.check = check

    def read(self, node, path):
        if not node.is_scalar():
            return None, [(_line(node), path, "expected a text value, got a %s" % _show(node))]
        value = node.data
        if value == "" and not self.allow_empty:
            return None, [(_line(node), path, "must not be empty")]
        if self.choices and value not in self.choices:
            return None, [(_line(node), path, "%r is not one of %s" % (value, ", ".join(self.choices)))]
        if self.pattern and not self.pattern.fullmatch(value):
            return None, [(_line(node), path, "%r is not %s" % (value, self.hint or "valid"))]
        wrong = self.check(value) if self.check else None
        if wrong:
            return None, [(_line(node), path, wrong)]
        return value, []


class Integer:
    """A whole number within bounds."""

    def __init__(self, lo=None, hi=None):
        self.lo, self.hi = lo, hi

    def read(self, node, path):
        if not node.is_scalar():
            return None, [(_line(node), path, "expected a whole number, got a %s" % _show(node))]
        try:
            node.revalidate(strictyaml.Int())
        except strictyaml.YAMLValidationError:
            return None, [(_line(node), path, "expected a whole number, got %r" % node.data)]
        value = node.data
        if self.lo is not None and value < self.lo or self.hi is not None and value > self.hi:
            return None, [(_line(node), path, "%d is out of range (%s)" % (value, self._range()))]
        return value, []

    def _range(self):
        if self.hi is None:
            return "at least %d" % self.lo
        return "%d-%d" % (self.lo, self.hi)


class Boolean:
    def read(self, node, path):
        if not node.is_scalar():
            return None, [(_line(node), path, "expected true or false, got a %s" % _show(node))]
        try:
            node.revalidate(strictyaml.Bool())
        except strictyaml.YAMLValidationError:
            return None, [(_line(node), path, "expected true or false, got %r" % node.data)]
        return node.data, []


class Numbers:
    """One whole number, or several (a YAML list or ``"1,10,50"``): a sweep.

    Returns a tuple of ints: one element for a plain value.
    """

    def __init__(self, lo=1, hi=None):
        self.item = Integer(lo, hi)

    def read(self, node, path):
        if node.is_sequence():
            items = [self.item.read(child, path) for child in node]
        elif node.is_scalar() and "," in node.data:
            items = [self._piece(piece.strip(), node, path) for piece in node.data.split(",")]
        else:
            items = [self.item.read(node, path)]
        problems = [p for _, ps in items for p in ps]
        if not items:
            problems.append((_line(node), path, "needs at least one value"))
        return (None if problems else Sweep(v for v, _ in items)), problems

    def _piece(self, text, node, path):
        if not re.fullmatch(r"[+-]?\d+", text):
            return None, [(_line(node), path, "expected whole numbers separated by commas, got %r" % node.data)]
        value = int(text)
        lo, hi = self.item.lo, self.item.hi
        if lo is not None and value < lo or hi is not None and value > hi:
            return None, [(_line(node), path, "%d is out of range (%s)" % (value, self.item._range()))]
        return value, []


class TextList:
    """A list of strings; a bare scalar counts as a list of one.

    With ``sweep=True`` the values are a ``Sweep``: one run per value.
    """

    def __init__(self, item=None, split_commas=False, sweep=False):
        self.item = item or Text()
        self.split_commas = split_commas
        self.kind = Sweep if sweep else tuple

    def read(self, node, path):
        if node.is_scalar():
            if self.split_commas:
                pieces = [p.strip() for p in node.data.split(",") if p.strip()]
                results = [self.item.read(_Scalar(p, node), path) for p in pieces]
            else:
                results = [self.item.read(node, path)]
        elif node.is_sequence():
            results = [self.item.read(child, "%s[%d]" % (path, i)) for i, child in enumerate(node)]
        else:
            return None, [(_line(node), path, "expected a list, got a mapping")]
        problems = [p for _, ps in results for p in ps]
        return (None if problems else self.kind(v for v, _ in results)), problems


class _Scalar:
    """A piece of a comma-separated scalar, carrying its parent's line."""

    def __init__(self, text, parent):
        self.data = text
        self.start_line = _line(parent)

    def is_scalar(self):
        return True


class ListOf:
    def __init__(self, item):
        self.item = item

    def read(self, node, path):
        if not node.is_sequence():
            return None, [(_line(node), path, "expected a list")]
        results = [self.item.read(child, "%s[%d]" % (path, i)) for i, child in enumerate(node)]
        problems = [p for _, ps in results for p in ps]
        return (None if problems else tuple(v for v, _ in results)), problems


class OneOf:
    """The first spec that reads the node cleanly; else the last one's problems."""

    def __init__(self, *specs):
        self.specs = specs

    def read(self, node, path):
        problems = []
        for spec in self.specs:
            value, problems = spec.read(node, path)
            if not problems:
                return value, []
        return None, problems


class Mapping:
    """A mapping with known keys; unknown keys and missing required ones are problems."""

    def __init__(self, fields, required=(), check=None):
        self.fields = dict(fields)
        self.required = tuple(required)
        self.check = check

    def read(self, node, path):
        if not node.is_mapping():
            return None, [(_line(node), path, "expected a mapping of fields, got %s" % _show(node))]
        value, problems = {}, []
        for key, child in node.items():
            name = key.data
            where = "%s.%s" % (path, name) if path else name
            spec = self.fields.get(name)
            if spec is None:
                problems.append((key_line(node, name), where, "unknown field (known: %s)" % ", ".join(sorted(self.fields))))
                continue
            item, item_problems = spec.read(child, where)
            problems.extend(item_problems)
            if not item_problems:
                value[name] = item
        for name in self.required:
            where = "%s.%s" % (path, name) if path else name
            # a field that is there but has problems of its own is not missing
            if name not in value and not any(p[1] == where or p[1].startswith((where + ".", where + "[")) for p in problems):
                problems.append((_line(node), where, "is required"))
        if not problems and self.check:
            # a rule across fields is placed on the line of the field it names (the mapping's, if that is absent)
            problems.extend((key_line(node, f), "%s.%s" % (path, f) if path else f, m) for f, m in self.check(value))
        return value, problems


class EnvMapping:
    """Environment variables: shell-identifier names, scalar values kept as text."""

    NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

    def read(self, node, path):
        if not node.is_mapping():
            return None, [(_line(node), path, "expected a mapping of NAME: value")]
        pairs, problems = [], []
        for key, child in node.items():
            where = "%s.%s" % (path, key.data)
            if not self.NAME.fullmatch(key.data):
                problems.append((key_line(node, key.data), where, "%r is not a shell variable name" % key.data))
            elif not child.is_scalar():
                problems.append((_line(child), where, "expected a text value"))
            else:
                pairs.append((key.data, child.data))
        return tuple(pairs), problems


def read_document(text):
    """Parse recipe text with strictyaml (flow style allowed, as the seed's recipes use it).

    Raises the strictyaml/ruamel error for text that is not YAML.
    """
    return strictyaml.dirty_load(text, strictyaml.Any(), allow_flow_style=True)
