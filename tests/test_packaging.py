"""pyproject.toml as pip sees it: the `mnist-live` command, the version, the modules and data
a regular install carries, and the requirements files in step with it. (`.ci/run` also
installs the project into a fresh virtual environment and runs the command from another
folder; that needs PyPI, so it is not a pytest test.)"""
import os
import re
import shutil
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


@pytest.mark.parametrize("how", [["main.py"], ["-m", "mnist_live"], ["-m", "mnist_live.main"]])
def test_version_flag_prints_the_package_version(tmp_path, how):
    import mnist_live
    if how == ["main.py"]:
        how = [str(ROOT / "main.py")]
    proc = subprocess.run([sys.executable, *how, "--version"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"mnist-live {mnist_live.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", mnist_live.__version__)


def test_the_package_version_is_read_from_the_package(pyproject):
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mnist_live.__version__"}


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


def test_every_app_package_and_the_bundled_samples_are_packaged(pyproject):
    """The clone's root is the package mnist_live; the installs only carry the sub-packages
    pyproject lists: a new package left out of it would be missing from `mnist-live`."""
    st = pyproject["tool"]["setuptools"]
    assert st["package-dir"] == {"mnist_live": "."}
    on_disk = sorted(".".join(("mnist_live", *p.parent.relative_to(ROOT).parts)) for p in ROOT.glob("*/**/__init__.py")
                     if not {".venv", "build", "tests", "bench"} & set(p.relative_to(ROOT).parts))
    assert sorted(p for p in st["packages"] if p not in ("mnist_live", "mnist_live.assets")) == on_disk
    assert st["package-data"]["mnist_live.assets"] == ["*.npz"]
    from mnist_live import data_loader
    for name in ("mnist", "fashion"):
        assert data_loader.sample_path(name).parent == ROOT / "assets"      # found next to the modules
        assert data_loader.sample_path(name).is_file()


def test_requirements_files_are_in_step_with_pyproject(pyproject):
    project = pyproject["project"]
    assert project["requires-python"] == ">=3.10"
    assert _requirements(ROOT / "requirements.txt") == sorted(map(_spec, project["dependencies"]))
    assert _requirements(ROOT / "requirements-test.txt") == sorted(map(_spec, project["optional-dependencies"]["test"]))
    lines = (ROOT / "requirements-test.txt").read_text().splitlines()
    assert "-r requirements.txt" in lines and "-e ." in lines       # the tests import this clone as mnist_live
    assert any(d.startswith("tqdm") for d in project["dependencies"])
    assert any(d.startswith("ruff==") for d in project["optional-dependencies"]["test"])   # lint results are stable


@pytest.mark.slow
def test_a_regular_install_puts_one_project_name_into_site_packages(tmp_path):
    """`pip install --no-deps --target DIR .`: DIR holds the package mnist_live and its
    dist-info (and the command in bin/), no bare module names (main, utils, config, ...)."""
    target, source = tmp_path / "site", copy_of_the_clone(tmp_path / "source")   # pip builds in the tree it is given
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--target", str(target), str(source)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in target.iterdir() if p.name != "bin" and not p.name.endswith(".dist-info"))
    assert names == ["mnist_live"], names
    assert [p.name for p in target.glob("*.dist-info")] and (target / "bin" / "mnist-live").is_file()
    installed = {str(p.relative_to(target / "mnist_live")) for p in (target / "mnist_live").rglob("*.py")}
    assert {"main.py", "neural_network.py", "data_loader.py", "visualization.py", "utils.py",
            "training/loop.py" if (ROOT / "training" / "loop.py").exists() else "training/trainer.py",
            "window/regions/network.py", "explain/lrp.py", "runs/library.py"} <= installed
    assert not any(p.startswith(("tests", "bench", "build")) for p in installed), sorted(installed)
    assert (target / "mnist_live" / "assets" / "mnist_sample.npz").is_file()
    run = subprocess.run([sys.executable, "-c", "import mnist_live.main, sys; print(mnist_live.main.__file__)"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(target), "PYTHONNOUSERSITE": "1"})
    assert run.returncode == 0 and run.stdout.startswith(str(target)), run.stderr


def copy_of_the_clone(dest):
    """The clone's own files (no virtual environment, caches or build folders) copied to `dest`."""
    skip = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".ruff_cache", ".pytest_cache")
    shutil.copytree(ROOT, dest, ignore=skip)
    return dest


MARK = """
import os as _os
if _os.environ.get("MNIST_LIVE_MARKS"):     # the test's marker: which processes imported this copy
    open(_os.path.join(_os.environ["MNIST_LIVE_MARKS"], str(_os.getpid())), "w").close()
"""


@pytest.mark.slow
def test_python_main_py_imports_its_own_clone_in_every_process(tmp_path):
    """`python main.py` in a clone that is not installed (here a copy elsewhere, in a folder
    not named mnist_live): the command, the window's training process and a sweep's worker
    processes all import that copy as mnist_live, never the installed clone."""
    clone = copy_of_the_clone(tmp_path / "some-clone")
    init = clone / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "0.') + MARK)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "MNIST_LIVE_MARKS": str(marks), "SDL_VIDEODRIVER": "dummy"}
    main = [sys.executable, str(clone / "main.py")]
    small = ["--offline", "--hidden", "16", "--train-size", "500", "--test-size", "100", "--epochs", "1",
             "--runs", str(tmp_path / "runs.sqlite3")]
    version = subprocess.run([*main, "--version"], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert version.stdout.startswith("mnist-live 0.1."), version.stdout + version.stderr
    window = subprocess.run([*main, *small, "--frames", "20", "--metrics", str(tmp_path / "w.json")],
                            capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert window.returncode == 0, window.stderr
    after_window = len(list(marks.iterdir()))
    assert after_window >= 2, "the window's training process did not import the copy"      # the app + its trainer
    sweep = subprocess.run([*main, "--headless", *small, "--lr", "0.01", "0.003", "--jobs", "2"],
                           capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path)
    assert sweep.returncode == 0 and "2 finished" in sweep.stdout, sweep.stdout + sweep.stderr
    assert len(list(marks.iterdir())) >= after_window + 3          # the sweep's command and its two workers
