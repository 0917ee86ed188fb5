"""The code's shape: lines per module, the largest class and function, and which module
imports which (the project's own modules only).

    python bench/code_stats.py              # this checkout
    python bench/code_stats.py DIR          # another checkout (e.g. a worktree of an older commit)

Reads the source with `ast` (nothing is imported or run). Modules are the top-level .py
files and the packages' modules (regions/...); tests, benchmarks and assets are left out.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules(root):
    """{module name: path} of the app's modules under root."""
    out = {p.stem: p for p in sorted(root.glob("*.py"))}
    for package in sorted(p.parent for p in root.glob("*/__init__.py")):
        if package.name in ("tests", "bench", "assets"):
            continue
        for p in sorted(package.glob("*.py")):
            out[package.name if p.stem == "__init__" else f"{package.name}.{p.stem}"] = p
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
    """The project modules a module imports (anywhere in it, lazily too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return sorted({n for n in found if n in names})


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
        rows.append((len(text.splitlines()), name, max(classes, default=(0, "-")), max(functions, default=(0, "-"))))
        graph[name] = [m for m in imports(tree, set(mods)) if m != name]
    print(f"checkout: {root}\n")
    print("| module | lines | largest class (lines) | largest function or method (lines) |")
    print("|---|---|---|---|")
    for lines, name, (cl, cn), (fl, fn) in sorted(rows, reverse=True):
        print(f"| {name} | {lines} | {cn} ({cl}) | {fn} ({fl}) |")
    total = sum(r[0] for r in rows)
    print(f"\n{len(rows)} modules, {total:,} lines; over 600 lines: "
          f"{', '.join(n for lines, n, _, _ in rows if lines > 600) or 'none'}")
    print("\nimports (module: the project modules it imports)")
    for name in sorted(graph):
        print(f"  {name}: {', '.join(graph[name]) or '-'}")
    pygame_free = [n for n, p in mods.items() if "import pygame" not in p.read_text()]
    print(f"\nwithout pygame: {', '.join(sorted(pygame_free))}")


if __name__ == "__main__":
    main()
