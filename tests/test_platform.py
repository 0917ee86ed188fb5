"""What must hold on every platform: a training process notices its parent's death without
re-parenting (Windows), and BLAS threads are limited whatever library NumPy uses."""
import ast
import os
import signal
import subprocess
import sys
import time

import pytest

PARENT_SCRIPT = """
import os, sys, time, multiprocessing as mp


def child(marker):
    fixed = os.getppid()
    os.getppid = lambda: fixed          # as on Windows: an orphan's parent pid never changes
    from mnist_live.training.process import ParentWatch
    watch = ParentWatch()
    open(marker + ".ready", "w").close()
    deadline = time.time() + 30
    while time.time() < deadline:
        if watch.gone():
            with open(marker, "w") as f:
                f.write("noticed")
            return
        time.sleep(0.02)


if __name__ == "__main__":
    mp.get_context("spawn").Process(target=child, args=(sys.argv[1],)).start()
    time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL to kill the parent")
def test_child_notices_its_parent_killed_without_reparenting(tmp_path):
    script, marker = tmp_path / "parent.py", tmp_path / "marker"
    script.write_text(PARENT_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(marker)])
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(str(marker) + ".ready") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.exists(str(marker) + ".ready"), "the child never started"
        time.sleep(0.3)
        assert not marker.exists()                         # the parent lives: nothing noticed
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists() and marker.read_text() == "noticed"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_parent_watch_in_the_test_process_sees_its_parent_alive():
    from mnist_live.training.process import ParentWatch
    assert ParentWatch().gone() is False


def test_window_mode_limits_every_blas_to_one_thread():
    """The thread pools NumPy loaded (threadpoolctl lists OpenBLAS, MKL, BLIS, OpenMP) run one
    thread after main.limit_blas_threads(); Accelerate, which threadpoolctl cannot see,
    reads VECLIB_MAXIMUM_THREADS."""
    pytest.importorskip("threadpoolctl")
    code = ("import sys, os; from mnist_live import main; main.limit_blas_threads()\n"
            "import numpy, threadpoolctl\n"
            "print(os.environ['VECLIB_MAXIMUM_THREADS'], [p['num_threads'] for p in threadpoolctl.threadpool_info()])")
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_NUM_THREADS", "_MAXIMUM_THREADS"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    veclib, threads = out.stdout.split(" ", 1)
    assert veclib == "1" and set(ast.literal_eval(threads)) <= {1}, out.stdout


def test_options_are_checked_before_numpy_is_imported(tmp_path):
    """The BLAS thread limits only work if set before NumPy loads, so parsing and checking
    the options (output files included) must not import it."""
    code = ("import sys; from mnist_live import main\n"
            f"main.parse_config(['--save', {str(tmp_path / 'm.npz')!r}, '--metrics', {str(tmp_path / 'm.json')!r},"
            f" '--screenshot', {str(tmp_path / 's.png')!r}])\n"
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_on_x11_the_window_pushes_through_shared_memory_unless_the_user_chose():
    """SDL's default framebuffer renders the whole window as a texture on every push (7-22 ms
    at 1600x900 without a GPU: bench/bench_push.py); X11's own costs what changed."""
    from mnist_live.window.session import use_native_framebuffer
    env = {}
    use_native_framebuffer(env, "linux")
    assert env == {"SDL_FRAMEBUFFER_ACCELERATION": "0"}
    env = {"SDL_FRAMEBUFFER_ACCELERATION": "opengl"}
    use_native_framebuffer(env, "linux")
    assert env == {"SDL_FRAMEBUFFER_ACCELERATION": "opengl"}        # the user's choice stays
    for platform in ("darwin", "win32"):
        env = {}
        use_native_framebuffer(env, platform)
        assert env == {}                                             # their native paths are left alone
