"""A Go ``text/template`` interpreter for the subset Dokku's ``nginx.conf.sigil`` templates use,
with gliderlabs/sigil's string functions, so the harness renders an app's nginx config the way
``sigil -f TEMPLATE KEY=VALUE ...`` does on a Dokku host (nginx-vhosts ``functions``).

Modelled on Go's text/template (pkg.go.dev/text/template) and sigil v0.12 ``builtin/builtin.go``:
actions ``{{ }}`` with ``{{-``/``-}}`` trimming and ``{{/* */}}`` comments; ``if`` / ``else if`` /
``else`` / ``range`` (with ``$v :=`` or ``$i, $v :=`` and ``else``) / ``with`` / ``end``;
variables (``$x := p``, ``$x = p``, ``$`` the data, block-scoped); pipelines ``a | f b`` (the
piped value is the last argument); fields ``.X``, ``$.X``, ``$v.X``; string (``"..."``,
```...```), number and ``true``/``false``/``nil`` literals; builtins ``and or not eq ne lt le gt
ge index len print printf``; sigil's ``split join default replace trim lower upper``
(``split SEP S`` is Go's ``strings.Split``, so an empty string gives one empty element).
A missing key prints ``<no value>`` and is false, as for a map in Go. Errors (an unknown
function, ``index`` out of range) raise ``TemplateError`` like sigil's non-zero exit.
Not modelled: ``define``/``template``/``block``, method calls, sigil's file and shell functions.
"""
from __future__ import annotations

import re

__all__ = ["render", "TemplateError"]


class TemplateError(Exception):
    pass


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)'
                    r'|(?P<decl>:=)|(?P<assign>=)|(?P<pipe>\|)|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)'
                    r'|(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)|(?P<field>(?:\.[A-Za-z0-9_]+)+|\.)'
                    r'|(?P<ident>[A-Za-z_][A-Za-z0-9_]*))')


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unexpected {text[pos:]!r} in command")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _lex(src: str) -> list[tuple[str, str]]:
    """Text and action items, with Go's trim markers applied to the neighbouring text."""
    items, pos, trim_next = [], 0, False
    for m in _ACTION.finditer(src):
        text = src[pos:m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        items.append(("text", text))
        body = m.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            items.append(("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = src[pos:]
    items.append(("text", tail.lstrip() if trim_next else tail))
    return items


def _parse(items, i=0, stop=("end",)):
    """A list of nodes up to an item whose first word is in ``stop``; returns (nodes, index, word)."""
    nodes = []
    while i < len(items):
        kind, body = items[i]
        if kind == "text":
            nodes.append(("text", body))
            i += 1
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in stop:
            return nodes, i, body
        if word in ("if", "range", "with"):
            node, i = _parse_block(items, i, word, body[len(word):].strip())
            nodes.append(node)
            continue
        if word in ("else", "end"):
            raise TemplateError(f"unexpected {{{{{word}}}}}")
        nodes.append(("action", body))
        i += 1
    if stop != ("<eof>",):
        raise TemplateError("unexpected EOF")
    return nodes, i, ""


def _parse_block(items, i, word, expr):
    body, i, closing = _parse(items, i + 1, stop=("else", "end"))
    other = []
    if closing.startswith("else"):
        rest = closing[4:].strip()
        if rest.startswith("if ") and word == "if":  # else if: a nested if that shares our end
            node, i = _parse_block(items, i, "if", rest[3:].strip())
            return (word, expr, body, [node]), i
        other, i, _ = _parse(items, i + 1, stop=("end",))
    return (word, expr, body, other), i + 1


class _Scope:
    def __init__(self, root):
        self.frames = [{"$": root}]

    def get(self, name):
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise TemplateError(f"undefined variable: {name}")

    def set(self, name, value):
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise TemplateError(f"undefined variable: {name}")


_MISSING = object()


def truth(value) -> bool:
    return not (value is None or value is _MISSING or value is False or value == 0 and not isinstance(value, str)
                or (hasattr(value, "__len__") and len(value) == 0))


def _text(value) -> str:
    if value is None or value is _MISSING:
        return "<no value>"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]"
    return str(value)


def _field(value, names):
    for name in names:
        if isinstance(value, dict):
            value = value.get(name, _MISSING)
        else:
            raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")
    return value


def _index(value, *keys):
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, _MISSING)
            continue
        try:
            position = int(key)
        except (TypeError, ValueError):
            raise TemplateError(f"error calling index: cannot index slice/array with type {type(key).__name__}")
        if not 0 <= position < len(value):
            raise TemplateError(f"error calling index: index out of range: {position}")
        value = value[position]
    return value


def _eq(first, *others):
    if not others:
        raise TemplateError("missing argument for comparison")
    return any(first == other for other in others)


def _and(*args):
    for arg in args:
        if not truth(arg):
            return arg
    return args[-1]


def _or(*args):
    for arg in args:
        if truth(arg):
            return arg
    return args[-1]


def _printf(fmt, *args):
    return re.sub(r"%[vsd]", "{}", fmt.replace("{", "{{").replace("}", "}}")).format(*(_text(a) for a in args))


FUNCS = {
    "and": _and, "or": _or, "not": lambda v: not truth(v), "eq": _eq, "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "index": _index, "len": len, "print": lambda *a: "".join(_text(v) for v in a), "printf": _printf,
    # sigil builtin/builtin.go
    "split": lambda sep, s: str(s).split(sep) if sep else list(str(s)),
    "join": lambda sep, items: sep.join(v for v in items if isinstance(v, str)),
    "default": lambda fallback, value: fallback if not truth(value) else value,
    "replace": lambda old, new, s: str(s).replace(old, new),
    "trim": lambda s: str(s).strip(" \n"), "lower": lambda s: str(s).lower(), "upper": lambda s: str(s).upper(),
}


class _Eval:
    def __init__(self, data):
        self.scope = _Scope(data)

    def pipeline(self, tokens, dot):
        """Evaluate ``[decl] cmd | cmd ...``; returns (value, declared_or_assigned)."""
        declare = None
        if len(tokens) >= 2 and tokens[0][0] == "var" and tokens[1][0] in ("decl", "assign"):
            declare = (tokens[0][1], tokens[1][0])
            tokens = tokens[2:]
        elif len(tokens) >= 4 and tokens[1][0] == "comma" and tokens[3][0] == "decl":
            declare = ((tokens[0][1], tokens[2][1]), "decl2")
            tokens = tokens[4:]
        value, first = _MISSING, True
        for cmd in _split_top(tokens, "pipe"):
            value = self.command(cmd, dot, None if first else value)
            first = False
        if declare and declare[1] != "decl2":
            name, how = declare
            if how == "decl":
                self.scope.frames[-1][name] = value
            else:
                self.scope.set(name, value)
            return value, True
        return value, declare

    def command(self, tokens, dot, piped):
        if not tokens:
            raise TemplateError("missing command")
        kind, text = tokens[0]
        args = [self.operand(t, dot) for t in _operands(tokens[1:])]
        if piped is not None:
            args.append(piped)
        if kind == "ident" and text not in ("true", "false", "nil"):
            if text not in FUNCS:
                raise TemplateError(f'function "{text}" not defined')
            return FUNCS[text](*args)
        if len(tokens) > 1 or piped is not None:
            raise TemplateError(f"can't give argument to non-function {text}")
        return self.operand(tokens[0], dot)

    def operand(self, token, dot):
        if isinstance(token, list):  # a parenthesised pipeline
            return self.pipeline(token, dot)[0]
        kind, text = token
        if kind == "str":
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        if kind == "raw":
            return text[1:-1]
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "ident":
            if text in ("true", "false", "nil"):
                return {"true": True, "false": False, "nil": None}[text]
            return FUNCS[text]() if text in FUNCS else _raise(f'function "{text}" not defined')
        if kind == "field":
            return dot if text == "." else _field(dot, text[1:].split("."))
        if kind == "var":
            name, *fields = text.split(".")
            return _field(self.scope.get(name), fields)
        raise TemplateError(f"unexpected {text!r} in operand")

    def run(self, nodes, dot, out):
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                value, declared = self.pipeline(_tokens(node[1]), dot)
                if not declared:
                    out.append(_text(value))
            else:
                self.block(node, dot, out)

    def block(self, node, dot, out):
        word, expr, body, other = node
        self.scope.frames.append({})
        try:
            tokens = _tokens(expr)
            value, declared = self.pipeline(tokens, dot)
            if word == "if":
                self.run(body if truth(value) else other, dot, out)
            elif word == "with":
                self.run(body if truth(value) else other, value if truth(value) else dot, out)
            else:
                items = list(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
                if not items:
                    self.run(other, dot, out)
                for key, item in items:
                    self.scope.frames.append({})
                    if isinstance(declared, tuple):
                        self.scope.frames[-1].update({declared[0][0]: key, declared[0][1]: item})
                    elif declared:
                        self.scope.frames[-1][tokens[0][1]] = item
                    self.run(body, item, out)
                    self.scope.frames.pop()
        finally:
            self.scope.frames.pop()


def _raise(message):
    raise TemplateError(message)


def _split_top(tokens, kind):
    parts, current, depth = [], [], 0
    for token in tokens:
        depth += token[0] == "lp"
        depth -= token[0] == "rp"
        if token[0] == kind and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(token)
    parts.append(current)
    return parts


def _operands(tokens):
    """Group parenthesised pipelines into one operand (a token list)."""
    out, i = [], 0
    while i < len(tokens):
        if tokens[i][0] == "lp":
            depth, j = 1, i + 1
            while depth:
                depth += tokens[j][0] == "lp"
                depth -= tokens[j][0] == "rp"
                j += 1
            out.append(tokens[i + 1:j - 1])
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out


def render(template: str, data: dict) -> str:
    nodes, _, _ = _parse(_lex(template), stop=("<eof>",))
    out: list[str] = []
    _Eval(data).run(nodes, data, out)
    return "".join(out)
