"""The subset of CEL that CustomResourceDefinition validation rules use.

x-kubernetes-validations rules are CEL expressions over `self` (and `oldSelf`
for transition rules). A real API server compiles them with cel-go; this is
a small Pratt parser and tree-walking evaluator covering what CRD rules are
written with in practice: literals, field access, has(), indexing, the
arithmetic/comparison/logical operators, `in`, the ternary, size(), string
methods (startsWith, endsWith, contains, matches, lowerAscii, upperAscii,
trim), the macros all/exists/exists_one/map/filter, and int()/string()/
double() conversions. Anything else raises CelUnsupported, which the server
reports instead of silently accepting the object (see docs/test-apiserver.md).
"""
import re


class CelUnsupported(Exception):
    """The expression uses CEL this evaluator does not implement."""


class CelError(Exception):
    """Evaluation failed (e.g. no such key), as cel-go would report."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+\.\d+(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+u?|\d+u?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}])
""", re.X)

_BINARY = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "in": 3,
           "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}


def _tokens(src):
    pos, out = 0, []
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise CelUnsupported(f"unexpected character {src[pos]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        text = m.group()
        if kind == "id" and text == "in":
            kind = "op"
        out.append((kind, text))
    out.append(("end", ""))
    return out


class _Parser:
    def __init__(self, src):
        self.toks = _tokens(src)
        self.i = 0

    def peek(self):
        return self.toks[self.i]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text):
        t = self.next()
        if t[1] != text:
            raise CelUnsupported(f"expected {text!r}, got {t[1]!r}")

    def parse(self):
        e = self.expr()
        if self.peek()[0] != "end":
            raise CelUnsupported(f"unexpected {self.peek()[1]!r}")
        return e

    def expr(self):
        cond = self.binary(1)
        if self.peek()[1] == "?":
            self.next()
            a = self.expr()
            self.expect(":")
            b = self.expr()
            return ("cond", cond, a, b)
        return cond

    def binary(self, min_prec):
        left = self.unary()
        while True:
            kind, op = self.peek()
            prec = _BINARY.get(op) if kind == "op" else None
            if prec is None or prec < min_prec:
                return left
            self.next()
            right = self.binary(prec + 1)
            left = ("bin", op, left, right)

    def unary(self):
        t = self.peek()
        if t[1] in ("!", "-"):
            self.next()
            return ("un", t[1], self.unary())
        return self.postfix(self.primary())

    def args(self):
        out = []
        if self.peek()[1] != ")":
            out.append(self.expr())
            while self.peek()[1] == ",":
                self.next()
                out.append(self.expr())
        self.expect(")")
        return out

    def postfix(self, e):
        while True:
            t = self.peek()[1]
            if t == ".":
                self.next()
                if self.peek()[1] == "?":
                    raise CelUnsupported("optional field selection")
                kind, name = self.next()
                if kind != "id":
                    raise CelUnsupported(f"bad member {name!r}")
                if self.peek()[1] == "(":
                    self.next()
                    e = ("call", name, e, self.args())
                else:
                    e = ("sel", e, name)
            elif t == "[":
                self.next()
                idx = self.expr()
                self.expect("]")
                e = ("idx", e, idx)
            else:
                return e

    def primary(self):
        kind, text = self.next()
        if kind == "num":
            if "." in text or "e" in text.lower() and not text.startswith("0x"):
                return ("lit", float(text))
            return ("lit", int(text.rstrip("u"), 0))
        if kind == "str":
            return ("lit", bytes(text[1:-1], "utf-8").decode("unicode_escape"))
        if kind == "id":
            if text in ("true", "false"):
                return ("lit", text == "true")
            if text == "null":
                return ("lit", None)
            if self.peek()[1] == "(":
                self.next()
                return ("call", text, None, self.args())
            return ("id", text)
        if text == "(":
            e = self.expr()
            self.expect(")")
            return e
        if text == "[":
            items = []
            if self.peek()[1] != "]":
                items.append(self.expr())
                while self.peek()[1] == ",":
                    self.next()
                    items.append(self.expr())
            self.expect("]")
            return ("list", items)
        if text == "{":
            pairs = []
            while self.peek()[1] != "}":
                k = self.expr()
                self.expect(":")
                pairs.append((k, self.expr()))
                if self.peek()[1] == ",":
                    self.next()
            self.expect("}")
            return ("map", pairs)
        raise CelUnsupported(f"unexpected token {text!r}")


_cache = {}


def compile_rule(src):
    """Parse src; raise CelUnsupported if it is outside the subset."""
    if src not in _cache:
        _cache[src] = _Parser(src).parse()
    return _cache[src]


_MACROS = {"all", "exists", "exists_one", "map", "filter"}


def _eval(node, env):
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "id":
        if node[1] not in env:
            raise CelError(f"undeclared reference to '{node[1]}'")
        return env[node[1]]
    if op == "list":
        return [_eval(x, env) for x in node[1]]
    if op == "map":
        return {_eval(k, env): _eval(v, env) for k, v in node[1]}
    if op == "sel":
        obj = _eval(node[1], env)
        if not isinstance(obj, dict) or node[2] not in obj:
            raise CelError(f"no such key: {node[2]}")
        return obj[node[2]]
    if op == "idx":
        obj, i = _eval(node[1], env), _eval(node[2], env)
        try:
            return obj[i]
        except (KeyError, IndexError, TypeError):
            raise CelError(f"no such key: {i}")
    if op == "un":
        v = _eval(node[2], env)
        return (not v) if node[1] == "!" else -v
    if op == "cond":
        return _eval(node[2] if _eval(node[1], env) else node[3], env)
    if op == "bin":
        o = node[1]
        if o == "&&":
            # CEL's && and || are commutative with respect to errors; approximate
            # by short-circuiting left to right.
            return bool(_eval(node[2], env)) and bool(_eval(node[3], env))
        if o == "||":
            return bool(_eval(node[2], env)) or bool(_eval(node[3], env))
        a, b = _eval(node[2], env), _eval(node[3], env)
        if o == "==":
            return a == b
        if o == "!=":
            return a != b
        if o == "in":
            return a in b
        try:
            if o == "<":
                return a < b
            if o == "<=":
                return a <= b
            if o == ">":
                return a > b
            if o == ">=":
                return a >= b
            if o == "+":
                return a + b
            if o == "-":
                return a - b
            if o == "*":
                return a * b
            if o == "/":
                if isinstance(a, int) and isinstance(b, int):
                    if b == 0:
                        raise CelError("division by zero")
                    return int(a / b)
                return a / b
            if o == "%":
                if b == 0:
                    raise CelError("modulus by zero")
                return int(__import__("math").fmod(a, b))
        except TypeError:
            raise CelError(f"no such overload: {type(a).__name__} {o} {type(b).__name__}")
    if op == "call":
        return _call(node, env)
    raise CelUnsupported(op)


def _call(node, env):
    _, name, target, args = node
    if target is None:
        if name == "has":
            if len(args) != 1 or args[0][0] != "sel":
                raise CelUnsupported("has() needs a field selection")
            obj = _eval(args[0][1], env)
            return isinstance(obj, dict) and args[0][2] in obj
        vals = [_eval(a, env) for a in args]
        if name == "size" and len(vals) == 1:
            return len(vals[0])
        if name == "int":
            return int(vals[0])
        if name == "double":
            return float(vals[0])
        if name == "string":
            v = vals[0]
            return ("true" if v else "false") if isinstance(v, bool) else str(v)
        raise CelUnsupported(f"function {name}()")
    if name in _MACROS:
        coll = _eval(target, env)
        if len(args) != 2 or args[0][0] != "id":
            raise CelUnsupported(f"{name}() with {len(args)} arguments")
        var, body = args[0][1], args[1]
        elems = list(coll.keys()) if isinstance(coll, dict) else list(coll)
        results = [_eval(body, dict(env, **{var: e})) for e in elems]
        if name == "all":
            return all(results)
        if name == "exists":
            return any(results)
        if name == "exists_one":
            return sum(1 for r in results if r) == 1
        if name == "map":
            return results
        return [e for e, r in zip(elems, results) if r]
    obj = _eval(target, env)
    vals = [_eval(a, env) for a in args]
    if name == "size" and not vals:
        return len(obj)
    if isinstance(obj, str):
        if name == "startsWith":
            return obj.startswith(vals[0])
        if name == "endsWith":
            return obj.endswith(vals[0])
        if name == "contains":
            return vals[0] in obj
        if name == "matches":
            return re.search(vals[0], obj) is not None
        if name == "lowerAscii":
            return obj.lower()
        if name == "upperAscii":
            return obj.upper()
        if name == "trim":
            return obj.strip()
    raise CelUnsupported(f"method {name}()")


def evaluate(src, self_value, old_self=None, has_old=False):
    """Evaluate rule src; return its value. Raises CelUnsupported/CelError."""
    env = {"self": self_value}
    if has_old:
        env["oldSelf"] = old_self
    return _eval(compile_rule(src), env)


def check_rule(rule, value, old, path, has_old):
    """Apply one x-kubernetes-validations entry; return an error message or None.

    The message mirrors the real server's: the rule's `message` if set, else
    'failed rule: <rule>'. Unsupported expressions raise CelUnsupported.
    """
    src = rule.get("rule", "")
    try:
        ok = evaluate(src, value, old, has_old)
    except CelError as e:
        return f"Invalid value: \"object\": {e} evaluating rule: {src}"
    if ok is True:
        return None
    if isinstance(value, dict):
        shown = '"object"'
    elif isinstance(value, list):
        shown = '"array"'
    else:
        shown = repr(value) if not isinstance(value, str) else f'"{value}"'
    return f"Invalid value: {shown}: {rule.get('message') or 'failed rule: ' + src}"
