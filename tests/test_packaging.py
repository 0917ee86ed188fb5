"""pyproject.toml as pip sees it: the `mnist-live` command, the version, the modules and data
a regular install carries, and the requirements files in step with it. (`.ci/run` also
installs the project into a fresh virtual environment and runs the command from another
folder; that needs PyPI, so it is not a pytest test.)"""
import os
import re
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def pyproject():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements(path):
    """Requirement lines of a requirements file, without comments and -r includes."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return sorted(line for line in lines if line and not line.startswith("-"))


def _spec(requirement):
    return re.sub(r"\s+", "", requirement)


@pytest.mark.parametrize("how", [["main.py"], ["-m", "main"]])
def test_version_flag_prints_the_package_version(tmp_path, how):
    import main
    if how == ["main.py"]:
        how = [str(ROOT / "main.py")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}                 # -m main from another folder
    proc = subprocess.run([sys.executable, *how, "--version"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"mnist-live {main.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", main.__version__)


def test_the_package_version_is_read_from_main(pyproject):
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "main.__version__"}


def test_console_command_loads_and_runs_like_the_installed_script(pyproject, monkeypatch, capsys):
    """What the `mnist-live` script that pip writes does: load the entry point, call it."""
    scripts = pyproject["project"]["scripts"]
    assert list(scripts) == ["mnist-live"]
    cli = EntryPoint("mnist-live", scripts["mnist-live"], "console_scripts").load()
    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/mnist-live", "--help"])
    with pytest.raises(SystemExit) as exit_:
        cli()
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mnist-live ") and "--headless" in out and "--version" in out
    monkeypatch.setattr(sys, "argv", ["mnist-live", "--epochs", "0"])
    with pytest.raises(SystemExit) as exit_:
        cli()
    assert exit_.value.code == 2
    assert "error: argument --epochs" in capsys.readouterr().err


def test_every_app_module_and_the_bundled_samples_are_packaged(pyproject):
    """The editable and the regular install only map what pyproject lists: a new top-level
    module or package left out of it would be missing from the `mnist-live` command."""
    st = pyproject["tool"]["setuptools"]
    on_disk = sorted(p.stem for p in ROOT.glob("*.py"))
    assert sorted(st["py-modules"]) == on_disk
    packages = sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))
    assert sorted(p for p in st["packages"] if p != "assets") == packages
    assert "assets" in st["packages"] and st["package-data"]["assets"] == ["*.npz"]
    import data_loader
    for name in ("mnist", "fashion"):
        assert data_loader.sample_path(name).parent == ROOT / "assets"      # found next to the modules
        assert data_loader.sample_path(name).is_file()


def test_requirements_files_are_in_step_with_pyproject(pyproject):
    project = pyproject["project"]
    assert project["requires-python"] == ">=3.10"
    assert _requirements(ROOT / "requirements.txt") == sorted(map(_spec, project["dependencies"]))
    assert _requirements(ROOT / "requirements-test.txt") == sorted(map(_spec, project["optional-dependencies"]["test"]))
    assert "-r requirements.txt" in (ROOT / "requirements-test.txt").read_text().splitlines()
    assert any(d.startswith("tqdm") for d in project["dependencies"])
    assert any(d.startswith("ruff==") for d in project["optional-dependencies"]["test"])   # lint results are stable
