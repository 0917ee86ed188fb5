"""The code's shape: lines per module, the largest class and function, which module imports
which (the project's own modules only), and the limits the structure keeps.

    python bench/code_stats.py              # this checkout
    python bench/code_stats.py DIR          # another checkout (e.g. a worktree of an older commit)

Reads the source with `ast` (nothing is imported or run). Modules are the top-level .py
files and the packages' modules, nested ones included (window.regions...); tests,
benchmarks and assets are left out. The clone's root is the package `mnist_live`, so
`mnist_live.window.state` is the module `window.state` here. The limits: no module over
500 lines, no class over 250, no function over 60 in the window and the training loop.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


MODULE_LINES, CLASS_LINES, FUNCTION_LINES = 500, 250, 60
LOOP_MODULES = ("visualization", "window.", "training.loop")   # where functions keep within FUNCTION_LINES
LEFT_OUT = {"tests", "bench", "assets", "build", ".venv"}


def modules(root):
    """{module name: path} of the app's modules under root (packages nested at any depth)."""
    out = {p.stem: p for p in sorted(root.glob("*.py"))}
    for init in sorted(root.glob("*/**/__init__.py")):
        package = init.parent.relative_to(root)
        if LEFT_OUT & set(package.parts):
            continue
        name = ".".join(package.parts)
        for p in sorted(init.parent.glob("*.py")):
            out[name if p.stem == "__init__" else f"{name}.{p.stem}"] = p
    return out


def spans(tree, kind):
    """[(lines, qualified name)] of the class or function definitions in tree (methods included)."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, kind):
                out.append((child.end_lineno - child.lineno + 1, prefix + child.name))
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, prefix + child.name + ".")
    visit(tree, "")
    return out


def imports(tree, names):
    """The project modules a module imports (anywhere in it, lazily too), by their names here
    (mnist_live.window.state -> window.state)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    local = {n.removeprefix("mnist_live.") for n in found if n.startswith("mnist_live.")}
    return sorted(n for n in local if n in names)


def over_limits(rows):
    """The modules, classes and functions over the limits, as lines of text."""
    out = []
    for lines, name, (cl, cn), (fl, fn), _ in rows:
        if lines > MODULE_LINES:
            out.append(f"module {name}: {lines} lines")
        if cl > CLASS_LINES:
            out.append(f"class {name}.{cn}: {cl} lines")
        if fl > FUNCTION_LINES and name.startswith(LOOP_MODULES):
            out.append(f"function {name}.{fn}: {fl} lines")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=str(ROOT), help="the checkout (default: this one)")
    root = Path(ap.parse_args().root).resolve()
    mods = modules(root)
    rows, graph = [], {}
    for name, path in mods.items():
        text = path.read_text()
        tree = ast.parse(text)
        classes = spans(tree, ast.ClassDef)
        functions = spans(tree, (ast.FunctionDef, ast.AsyncFunctionDef))
        rows.append((len(text.splitlines()), name, max(classes, default=(0, "-")), max(functions, default=(0, "-")),
                     functions))
        graph[name] = [m for m in imports(tree, set(mods)) if m != name]
    print(f"checkout: {root}\n")
    print("| module | lines | largest class (lines) | largest function or method (lines) |")
    print("|---|---|---|---|")
    for lines, name, (cl, cn), (fl, fn), _ in sorted(rows, key=lambda r: (-r[0], r[1])):
        print(f"| {name} | {lines} | {cn} ({cl}) | {fn} ({fl}) |")
    total = sum(r[0] for r in rows)
    print(f"\n{len(rows)} modules, {total:,} lines")
    over = over_limits(rows)
    print(f"over the limits ({MODULE_LINES} lines a module, {CLASS_LINES} a class, {FUNCTION_LINES} a function in "
          f"the window and the training loop): {'; '.join(over) or 'none'}")
    print("\nimports (module: the project modules it imports)")
    for name in sorted(graph):
        print(f"  {name}: {', '.join(graph[name]) or '-'}")
    pygame_free = [n for n, p in mods.items() if "import pygame" not in p.read_text()]
    print(f"\nwithout pygame: {', '.join(sorted(pygame_free))}")


if __name__ == "__main__":
    main()
