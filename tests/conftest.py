"""Test set-up: headless SDL before pygame is imported, repo root on sys.path, and
paths to the shared MNIST files (present on the dev machines and CI only)."""
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

ROOT = Path(__file__).resolve().parents[1]


def _check_installed_clone():
    """The tests import this clone as the package mnist_live, installed in place by
    `pip install -r requirements-test.txt` (`-e .`), so every process they start finds it too."""
    import importlib.util
    spec = importlib.util.find_spec("mnist_live")
    where = spec and spec.submodule_search_locations and Path(list(spec.submodule_search_locations)[0]).resolve()
    if where != ROOT:
        raise pytest.UsageError(f"mnist_live is {'not installed' if not where else f'installed from {where}'}: "
                                f"run `pip install -r requirements-test.txt` (or `pip install -e .`) in {ROOT}")


_check_installed_clone()

SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
SHARED_FASHION = ROOT.parent / "shared" / "data" / "fashion-mnist"
NO_SHARED = "../shared/data/mnist not found (it exists only on the development machines and CI)"


MAIN = str(ROOT / "main.py")


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# A child the tests interrupt like Ctrl+C: a process group of its own (the signal goes to it
# whole, as a terminal sends it), and the default SIGINT handler even when the suite runs
# from a shell that ignores SIGINT (a background job, some CI runners), which a child inherits.
CTRL_C_CHILD = {"start_new_session": True, "preexec_fn": _default_sigint}


# Runs in the tests (and their subprocesses, also those whose environment a test module
# copies at import) record into a temporary run library, never into the user's
# (run_library.ENV_PATH overrides the default file). Set at import, before any test module.
_RUNS_DIR = tempfile.TemporaryDirectory(prefix="mnist-live-test-runs-")
os.environ["MNIST_LIVE_RUNS"] = str(Path(_RUNS_DIR.name) / "runs.sqlite3")


# The window's remembered view settings (view_settings.default_path) go to a temporary
# config folder too, never the user's ~/.config: set at import, like the run library.
_CONFIG_DIR = tempfile.TemporaryDirectory(prefix="mnist-live-test-config-")
os.environ["XDG_CONFIG_HOME"] = _CONFIG_DIR.name


@pytest.fixture(autouse=True, scope="session")
def _private_run_library():
    """The temporary run library and config folder stay in place for the whole session."""
    assert os.environ["MNIST_LIVE_RUNS"].startswith(_RUNS_DIR.name)
    assert os.environ["XDG_CONFIG_HOME"] == _CONFIG_DIR.name
    yield


def _app_children():
    """pid -> command line of this process's children running main.py (Linux: /proc)."""
    found = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[0] != "Z" and int(stat[1]) == os.getpid() and MAIN in cmd:
            found[int(entry.name)] = cmd
    return found


@pytest.fixture(autouse=True)
def _nothing_left_running():
    """A test that fails half-way must not leave the app it started running (a window on
    500 epochs would outlive the test run): its main.py children, and their process
    groups when they lead one, are killed after it."""
    before = set(_app_children())
    yield
    for pid in set(_app_children()) - before:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture(scope="session")
def sample():
    """The bundled MNIST sample (5,000 / 1,000 digits), loaded once for the session."""
    from mnist_live import data_loader
    return data_loader.load_dataset("mnist", offline=True, log=lambda *a: None)


@pytest.fixture(scope="session")
def fashion():
    """The bundled Fashion-MNIST sample, loaded once for the session."""
    from mnist_live import data_loader
    return data_loader.load_dataset("fashion", offline=True, log=lambda *a: None)


def run(*args, timeout=120):
    """Run main.py as a user would (dummy video driver); the finished process."""
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, timeout=timeout, env=env)


def assert_one_line_error(proc, status, *fragments):
    """The run ended with `status` and a one-line 'error: ...' holding each fragment."""
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines and "error:" in lines[-1], proc.stderr
    for frag in fragments:
        assert frag in lines[-1], lines[-1]


# ------------------------------------------------------------------ the two ways a training step computes
# (tests/test_neural_network.py, tests/engine/, tests/training/test_optimizers.py): products
# through BLAS or np.matmul (`gemm_path`), optimizer updates as NumPy passes or compiled
# (`update_path`), and a network cut into blocks as a big one on a machine with many CPUs.
@pytest.fixture(params=["blas", "numpy"])
def gemm_path(request, monkeypatch):
    """Run a test through NumPy's BLAS called directly, then through the np.matmul
    fallback that other NumPy builds get."""
    from mnist_live.engine import blas
    if request.param == "numpy":
        monkeypatch.setattr(blas, "_GEMM", {})
    elif not blas._checked_cblas():
        pytest.skip("this NumPy's BLAS was not found; only the np.matmul path runs")
    return request.param


@pytest.fixture(params=["numpy", "compiled"])
def update_path(request):
    """Run a test through the NumPy update passes (the reference), then through the
    compiled one-pass rules (engine/compiled.py) when numba is installed."""
    from mnist_live.engine import compiled
    if request.param == "compiled" and compiled.kernels() is None:
        pytest.skip("numba is not installed (or MLP_NUMPY_UPDATE=1): only the NumPy updates run")
    return request.param == "compiled"


def split_net(sizes=(784, 96, 40, 10), blocks=3, seed=2, dtype=None):
    """A network whose training step cuts every layer into `blocks` blocks (as a big
    network on a machine with that many CPUs)."""
    import numpy as np

    from mnist_live.neural_network import MLP
    net = MLP(sizes, "relu", seed=seed, dtype=np.float32 if dtype is None else dtype)
    net.SPLIT_BELOW, net.BLOCKS = 1, blocks
    return net
