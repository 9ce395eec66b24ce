#!/usr/bin/env python3
"""Keeps the shape of core/ and profiler/ that docs/architecture.md draws.

Reads every project include of every C file and fails, naming file and line,
when:
  - a file in core/ includes a header of a higher layer (LAYERS below), a
    core header without its folder ("pipeline.h" instead of
    "engine/pipeline.h"), or the profiler from a layer below the engine;
  - files include each other in a circle (foo.c, foo.h and a private
    foo_internal.h are one node), in core/ or in profiler/src/;
  - the profiler or a plugin includes a private header of core/;
  - a .c or .h file of the project (core/, profiler/, plugins/, operator/,
    tests/) has more than MAX_LINES lines, or does not open with a comment
    that says what it holds;
  - a folder of core/ is in no layer (a new subsystem needs a place here and
    in docs/architecture.md).

Usage: check_layers.py [ROOT]          check the tree at ROOT (default: ../..)
       check_layers.py --graph [ROOT]  print which layer includes which, with counts
                                       (what docs/architecture.md's picture shows)
       check_layers.py --self-test     prove on made-up trees that each rule fails
"""
import os
import re
import sys
import tempfile

# core/'s layers, lowest first. A file may include headers of its own layer
# and of lower ones, never of a higher one. Keep in step with
# docs/architecture.md and core/CMakeLists.txt.
LAYERS = ["util", "config", "measure", "engine", "store", "lab", "server", "cli"]
RANK = {name: i for i, name in enumerate(LAYERS)}
# The public plugin ABI (core/include/observatory/) is below every layer.
PUBLIC = "observatory"
# The profiler library: the engine and everything above it may use it.
PROFILER_HEADER = "obs_profiler.h"
PROFILER_MIN_RANK = RANK["engine"]
# Generated at build time, not part of the source tree.
GENERATED = {"profile.pb-c.h"}
MAX_LINES = 800

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def c_files(top):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in ("node_modules", "dist"))
        for f in sorted(filenames):
            if f.endswith((".c", ".h")):
                yield os.path.join(dirpath, f)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            m = INCLUDE.match(line)
            if m:
                yield n, m.group(1)


def find_cycles(graph):
    """Returns the circles of a directed graph {node: {node: (file, line)}},
    each as a list of nodes (first repeated at the end)."""
    cycles, state, stack = [], {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, {})):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v in graph and not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if not state.get(u):
            visit(u)
    return cycles


def report_cycles(where, graph, errors):
    """One error per circle of `graph`, naming each include on it."""
    for cyc in find_cycles(graph):
        steps = ", ".join(f"{a} -> {b} ({graph[a][b]})" for a, b in zip(cyc, cyc[1:]))
        errors.append(f"{where}: files include each other in a circle: {steps}")


def node(relpath):
    """foo.c and foo.h are one node: 'engine/pipeline'. A module's private
    header (foo_internal.h, shared by the files that implement foo) belongs
    to that module too."""
    return re.sub(r"_internal$", "", os.path.splitext(relpath)[0])


def check_file_shape(path, rel, errors):
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    n = text.count("\n")
    if n > MAX_LINES:
        errors.append(f"{rel}: {n} lines, more than {MAX_LINES}: it holds more than one idea, "
                      "split it")
    if not text.lstrip().startswith("/*"):
        errors.append(f"{rel}:1: does not open with a comment saying what the file is for")


def check_core(root, errors):
    core = os.path.join(root, "core")
    graph = {}
    for path in c_files(core):
        rel = os.path.relpath(path, core)
        parts = rel.split(os.sep)
        if parts[0] == "include":
            continue  # the public ABI: checked by its own tests
        layer = parts[0] if len(parts) > 1 else None
        if layer not in RANK:
            errors.append(f"core/{rel}: folder '{layer or '.'}' is in no layer; add it to "
                          "LAYERS in tests/integration/check_layers.py and to "
                          "docs/architecture.md")
            continue
        check_file_shape(path, "core/" + rel, errors)
        me = node(rel)
        graph.setdefault(me, {})
        for line, inc in includes(path):
            where = f"core/{rel}:{line}"
            if inc == PROFILER_HEADER:
                if RANK[layer] < PROFILER_MIN_RANK:
                    errors.append(f"{where}: includes {inc}: the profiler is for the engine "
                                  f"and above, not for {layer}")
                continue
            head = inc.split("/")[0] if "/" in inc else None
            if head == PUBLIC:
                continue
            if head not in RANK:
                target = os.path.join(core, layer, inc)
                hint = f' (write "{layer}/{inc}")' if os.path.exists(target) else ""
                errors.append(f'{where}: #include "{inc}": a core header is included with '
                              f"its folder{hint}")
                continue
            if RANK[head] > RANK[layer]:
                errors.append(f"{where}: includes {inc}: {layer} (layer {RANK[layer]}) may "
                              f"not include {head} (layer {RANK[head]}), a higher layer")
            if node(inc) != me:
                graph[me].setdefault(node(inc), where)
    report_cycles("core", graph, errors)


def check_profiler(root, errors):
    src = os.path.join(root, "profiler")
    if not os.path.isdir(src):
        return
    graph = {}
    for path in c_files(src):
        rel = os.path.relpath(path, src)
        check_file_shape(path, "profiler/" + rel, errors)
        me = node(os.path.basename(rel))
        graph.setdefault(me, {})
        for line, inc in includes(path):
            where = f"profiler/{rel}:{line}"
            head = inc.split("/")[0] if "/" in inc else None
            if head == PUBLIC or inc in GENERATED:
                continue
            if head in RANK:
                errors.append(f"{where}: includes core's {inc}: the profiler knows only the "
                              "public ABI (observatory/)")
                continue
            other = node(os.path.basename(inc))
            if other != me:
                graph[me].setdefault(other, where)
    report_cycles("profiler", graph, errors)


def check_plugins(root, errors):
    top = os.path.join(root, "plugins")
    if not os.path.isdir(top):
        return
    for path in c_files(top):
        rel = os.path.relpath(path, root)
        for line, inc in includes(path):
            head = inc.split("/")[0] if "/" in inc else None
            if head in RANK:
                errors.append(f"{rel}:{line}: includes core's private {inc}: a plugin sees "
                              "only observatory/stage.h")


def layer_graph(root):
    """Counts of includes from each layer of core/ to each other layer (and
    to the public ABI and the profiler)."""
    core = os.path.join(root, "core")
    edges = {}
    for path in c_files(core):
        parts = os.path.relpath(path, core).split(os.sep)
        if len(parts) < 2 or parts[0] not in RANK:
            continue
        for _, inc in includes(path):
            if inc == PROFILER_HEADER:
                head = "profiler"
            else:
                head = inc.split("/")[0] if "/" in inc else None
            if head and head != parts[0] and (head in RANK or head in (PUBLIC, "profiler")):
                edges[(parts[0], head)] = edges.get((parts[0], head), 0) + 1
    return edges


# Outside core/ and profiler/ (checked with their layers), the size and
# opening-comment rules hold for every C file of these folders.
OTHER_C_DIRS = ["plugins", "operator", "tests"]


def check_other_files(root, errors):
    for top in OTHER_C_DIRS:
        d = os.path.join(root, top)
        if os.path.isdir(d):
            for path in c_files(d):
                check_file_shape(path, os.path.relpath(path, root), errors)


def check(root):
    errors = []
    check_core(root, errors)
    check_profiler(root, errors)
    check_plugins(root, errors)
    check_other_files(root, errors)
    return errors


def self_test():
    """Each rule, broken once in a made-up tree, must be reported; a clean
    tree must pass."""
    def tree(files):
        d = tempfile.mkdtemp(prefix="check_layers.")
        for rel, text in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as fh:
                fh.write(text)
        return d

    ok = {
        "core/engine/pipeline.c": '/* x */\n#include "engine/pipeline.h"\n#include "measure/h.h"\n',
        "core/engine/pipeline.h": '/* x */\n#include "observatory/stage.h"\n',
        "core/measure/h.h": "/* x */\n",
        "core/lab/e.c": '/* x */\n#include "engine/pipeline.h"\n#include "obs_profiler.h"\n',
        "profiler/src/a.c": '/* x */\n#include "b.h"\n',
        "profiler/src/b.h": "/* x */\n",
    }
    cases = {
        "upward": ({"core/engine/pipeline.c": '/* x */\n#include "lab/e.h"\n',
                    "core/lab/e.h": "/* x */\n"}, "may not include lab"),
        "circle": ({"core/engine/a.c": '/* x */\n#include "engine/b.h"\n',
                    "core/engine/b.c": '/* x */\n#include "engine/a.h"\n',
                    "core/engine/a.h": "/* x */\n", "core/engine/b.h": "/* x */\n"}, "circle"),
        "flat": ({"core/engine/a.c": '/* x */\n#include "a.h"\n',
                  "core/engine/a.h": "/* x */\n"}, "with its folder"),
        "profiler low": ({"core/measure/m.c": '/* x */\n#include "obs_profiler.h"\n'},
                         "the profiler is for the engine"),
        "too long": ({"core/util/u.c": "/* x */\n" + "int x;\n" * (MAX_LINES + 1)},
                     "more than"),
        "no comment": ({"core/util/u.c": "int x;\n"}, "does not open with a comment"),
        "new folder": ({"core/extra/x.c": "/* x */\n"}, "is in no layer"),
        "profiler circle": ({"profiler/src/a.c": '/* x */\n#include "b.h"\n',
                             "profiler/src/b.c": '/* x */\n#include "a.h"\n',
                             "profiler/src/a.h": "/* x */\n", "profiler/src/b.h": "/* x */\n"},
                            "profiler: files include each other in a circle"),
        "profiler into core": ({"profiler/src/a.c": '/* x */\n#include "engine/stage.h"\n'},
                               "the profiler knows only"),
        "plugin private": ({"plugins/p/p.c": '/* x */\n#include "engine/pool.h"\n'},
                           "a plugin sees only"),
        "long test": ({"tests/unit/t.c": "/* x */\n" + "int x;\n" * (MAX_LINES + 1)},
                      "more than"),
    }
    failed = 0
    errs = check(tree(ok))
    if errs:
        print("self-test: a clean tree was refused:\n  " + "\n  ".join(errs))
        failed += 1
    for name, (files, expect) in cases.items():
        errs = check(tree(files))
        if not any(expect in e for e in errs):
            print(f"self-test '{name}': expected an error containing '{expect}', got {errs}")
            failed += 1
    n = len(cases) + 1
    print(f"{n - failed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    if len(argv) > 1 and argv[1] == "--graph":
        root = argv[2] if len(argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..")
        edges = layer_graph(os.path.abspath(root))
        for layer in reversed(LAYERS):
            outs = sorted(((h, n) for (l, h), n in edges.items() if l == layer),
                          key=lambda e: -RANK.get(e[0], -1))
            print(f"{layer:8} -> " + ", ".join(f"{h} ({n})" for h, n in outs))
        return 0
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    errors = check(os.path.abspath(root))
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} layering problem(s); docs/architecture.md says where things go")
        return 1
    print("layers: core/ and profiler/ keep their order, no circles; no C file over "
          f"{MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
