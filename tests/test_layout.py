"""The layout of the code, checked so it cannot drift: each package's docstring lists
exactly its modules, the README's layout section is the tree those docstrings make, and
the imports run one way (model code never imports pygame; training never imports the run
library or the window; the run library's command never imports NumPy)."""
import ast
import re
import textwrap

import pytest

from conftest import ROOT

PACKAGES = ("engine", "training", "runs", "window", "window/regions", "explain")
FACES = ("main", "neural_network", "data_loader", "visualization", "utils")


def listed(package):
    """The module names a package's docstring lists (lines '    name   what it is')."""
    doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    return [m.group(1) for m in re.finditer(r"^    ([a-z_]+/?) {2,}", doc, re.M)]


def on_disk(package):
    folder = ROOT / package
    names = [p.stem for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]
    return names + [f"{p.parent.name}/" for p in sorted(folder.glob("*/__init__.py"))]


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_docstring_lists_exactly_its_modules(package):
    assert sorted(listed(package)) == sorted(on_disk(package)), \
        f"{package}/__init__.py's docstring lists {sorted(listed(package))}; on disk: {sorted(on_disk(package))}"


def first_line(path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.splitlines()[0] if doc else ""


def wrapped(text, indent=21, width=100):
    return [" " * indent + line for line in textwrap.wrap(text, width - indent)]


def readme_tree():
    """The README's layout tree, made from the code: the five faces with the first line of
    their docstrings, each package with its own and the modules it lists."""
    lines = ["```"]
    for face in FACES:
        lines.append(f"{face + '.py':<20} {first_line(ROOT / (face + '.py'))}")
    for package in ("engine", "training", "runs", "window", "explain"):
        lines.append(f"{package + '/':<20} {first_line(ROOT / package / '__init__.py')}")
        modules = listed(package)
        lines += wrapped(", ".join(m.rstrip("/") for m in modules))
        if "regions/" in modules:
            lines += wrapped("regions/: " + ", ".join(listed(f"{package}/regions")))
    lines += [f"{'assets/':<20} the bundled samples, the README's pictures and the scripts that make them",
              f"{'bench/':<20} benchmarks that print tables (bench/README.md holds the figures)",
              f"{'tests/':<20} the pytest suite: test_<module>.py for each of the five modules above, and a",
              " " * 21 + "folder for each package (tests/engine/, tests/training/, ...)", "```"]
    return "\n".join(lines)


def test_every_module_and_package_has_its_tests_in_the_matching_place():
    tests = ROOT / "tests"
    missing = [f"tests/test_{face}.py" for face in FACES if not (tests / f"test_{face}.py").is_file()]
    missing += [f"tests/{package}/" for package in ("engine", "training", "runs", "window", "explain")
                if not list((tests / package).glob("test_*.py"))]
    assert not missing, f"no tests where the layout promises them: {missing}"


def test_the_readme_layout_is_the_tree_the_code_makes():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"## Project layout\n\n.*?(```\n.*?\n```)", readme, re.S)
    assert m, "README has no Project layout tree"
    assert m.group(1) == readme_tree(), "README's layout tree differs from the code; paste:\n" + readme_tree()


def imports_of(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


@pytest.mark.parametrize("modules, forbidden", [
    (["neural_network.py", "utils.py", "training/*.py", "explain/*.py", "runs/*.py"], ("pygame",)),
    (["training/*.py"], ("mnist_live.runs", "mnist_live.window", "mnist_live.visualization")),
    (["training/loop.py"], ("numpy", "mnist_live.runs", "mnist_live.training.trainer")),
    (["runs/library.py", "runs/schema.py", "runs/host.py", "runs/command.py", "runs/rows.py", "runs/export.py"],
     ("numpy",)),
    (["explain/*.py", "neural_network.py"], ("mnist_live.training", "mnist_live.window", "mnist_live.runs")),
    (["engine/*.py"], ("mnist_live.neural_network", "mnist_live.training", "mnist_live.window", "mnist_live.runs",
                       "mnist_live.explain")),
])
def test_imports_run_one_way(modules, forbidden):
    for pattern in modules:
        for path in ROOT.glob(pattern):
            bad = [name for name in imports_of(path) if name.startswith(forbidden)]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
