"""Sweeps under faults: a sweep is locked while it runs, a damaged journal on --resume, a sweep
that cannot start (no scheduler, a full disk) leaves nothing behind, kill -9 of the parent
leaves no process, and a Dask cluster that is not one, has no workers or loses one."""
import errno
import os
import signal
import socket
import sys
import threading
import time

import pytest

from conftest import assert_one_line_error
from mnist_live.runs import study as studies
from mnist_live.runs import sweeps as tuning
from mnist_live.runs.sweep_plan import SweepPlan, Values
from mnist_live.training.config import Config
from test_sweeps import _alive, _descendants, _start, _wait_for_line, private_home, run, trials

TINY = ["--headless", "--offline", "--hidden", "16", "--train-size", "500"]
LONG = [*TINY, "--epochs", "5000", "--lr", "0.001", "0.003", "--jobs", "2"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    return private_home(tmp_path, monkeypatch)


# ------------------------------------------------------------------ one process per sweep
@pytest.mark.slow
def test_a_running_sweep_is_locked(home):
    """Catches: a second --resume (or the same --sweep-name) while the sweep runs, which
    deleted the first one's temp folder and crashed both."""
    env, library = home
    folder = tuning.sweep_folder(library)
    first = _start([*LONG, "--sweep-name", "lk"], env)
    try:
        _wait_for_line(first, "started")
        for args in (["--headless", "--resume", "lk"], [*TINY, "--lr", "0.1", "0.2", "--sweep-name", "lk"]):
            again = run(*args, env=env)
            assert_one_line_error(again, 1, "sweep 'lk' is running in another process", f"pid {first.pid}")
        assert os.path.isdir(os.path.join(folder, "lk.tmp"))              # the first one's data untouched
        os.killpg(first.pid, signal.SIGINT)
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 130
    assert [r["status"] for r in trials(library, "lk")] == ["interrupted", "interrupted"]


def test_the_lock_is_freed_when_its_holder_ends(tmp_path):
    lock = studies.SweepLock(str(tmp_path), "s").acquire()
    with pytest.raises(studies.SweepFailed, match=f"running in another process \\(pid {os.getpid()}\\)"):
        studies.SweepLock(str(tmp_path), "s").acquire()
    lock.release()
    assert not os.listdir(tmp_path)
    with studies.SweepLock(str(tmp_path), "s"):
        assert os.listdir(tmp_path) == ["s.lock"]


# ------------------------------------------------------------------ bad journals, failed starts
def _journal(folder, name):
    os.makedirs(folder, exist_ok=True)
    plan = SweepPlan(Config(headless=True, offline=True, val=1000), {"lr": Values((0.1, 0.2))})
    study, _ = studies.open_study(studies.journal_path(folder, name), name, plan)
    trial = study.ask()
    study.tell(trial, 0.5)
    return studies.journal_path(folder, name)


@pytest.mark.parametrize("damage, fragment", [
    ("empty", "it is empty"), ("truncated", "damaged"), ("random", "damaged"), ("renamed", "it holds sweep 'good'")])
def test_a_damaged_journal_on_resume_is_one_line(home, damage, fragment):
    env, library = home
    folder = tuning.sweep_folder(library)
    good = _journal(folder, "good")
    data = open(good, "rb").read()
    content = {"empty": b"", "truncated": data[:len(data) // 2], "random": os.urandom(3000), "renamed": data}[damage]
    with open(os.path.join(folder, "bad.journal"), "wb") as f:
        f.write(content)
    proc = run("--headless", "--resume", "bad", env=env)
    assert_one_line_error(proc, 1, "sweep journal", "bad.journal", fragment)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_sweep_that_cannot_start_leaves_nothing_and_may_be_started_again(home):
    pytest.importorskip("distributed", reason="Dask's distributed is the optional extra: pip install -e .[cluster]")
    env, library = home
    folder = tuning.sweep_folder(library)
    t0 = time.monotonic()
    proc = run(*TINY, "--epochs", "1", "--lr", "0.01", "0.02", "--sweep-name", "again",
               "--scheduler", f"tcp://127.0.0.1:{_free_port()}", env=env)
    assert_one_line_error(proc, 1, "no Dask scheduler at tcp://127.0.0.1:", "refused")
    assert time.monotonic() - t0 < 20 and os.listdir(folder) == []         # no journal, no lock, no temp folder
    proc = run(*TINY, "--epochs", "1", "--lr", "0.01", "0.02", "--sweep-name", "again", "--jobs", "1", env=env)
    assert proc.returncode == 0, proc.stderr


def test_a_full_disk_for_the_temp_folder_is_one_line(home, monkeypatch, capsys):
    """Catches: an OSError traceback when the workers' copy of the data set cannot be written,
    and the journal it left behind."""
    import numpy as np

    from mnist_live import main
    env, library = home
    folder = tuning.sweep_folder(library)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(np, "save", full)
    with pytest.raises(SystemExit) as exit_:
        main.main([*TINY, "--epochs", "1", "--lr", "0.01", "0.02", "--sweep-name", "full", "--jobs", "1"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: cannot write the data set for the workers" in err[0] and "No space left" in err[0]
    assert os.listdir(folder) == []


def test_a_full_disk_under_the_journal_mid_sweep_is_one_line(home, monkeypatch, capsys):
    """Catches: a traceback when the study's journal cannot be appended to once the sweep runs."""
    from optuna.storages.journal import JournalFileBackend

    from mnist_live import main
    env, library = home
    folder = tuning.sweep_folder(library)
    append, calls = JournalFileBackend.append_logs, []

    def fill_up(self, logs):
        calls.append(len(logs))
        if len(calls) > 3:                                       # the study made, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return append(self, logs)
    monkeypatch.setattr(JournalFileBackend, "append_logs", fill_up)
    with pytest.raises(SystemExit) as exit_:
        main.main([*TINY, "--epochs", "1", "--lr", "0.01", "0.02", "--sweep-name", "fill", "--jobs", "1"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: the sweep stopped: No space left on device"]
    assert sorted(os.listdir(folder)) == ["fill.journal"]                 # the temp folder cleaned up


# ------------------------------------------------------------------ the parent killed
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_parent_leaves_no_process_behind(home):
    """Catches: the Manager and the loky workers outliving a parent killed with -9 (nothing
    stops them in order then: they watch for their parent's end themselves)."""
    env, library = home
    folder = tuning.sweep_folder(library)
    proc = _start([*LONG, "--sweep-name", "k9"], env)
    try:
        _wait_for_line(proc, "started")
        _wait_for_line(proc, "started")
        below = _descendants(proc.pid)
        assert len(below) >= 3                                      # two workers and the Manager at least
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in below) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not [p for p in below if _alive(p)]
    if os.path.isdir("/dev/shm"):
        assert not [n for n in os.listdir("/dev/shm") if f"-{proc.pid}-" in n]      # loky's semaphores
    with studies.SweepLock(folder, "k9"):                          # the kernel freed the dead parent's lock
        pass


# ------------------------------------------------------------------ Dask clusters that are not what they seem
class _Silent:
    """A local TCP server that accepts connections and never says a word, or (`reply`) answers
    with bytes that are not Dask's protocol: not a Dask scheduler either way."""

    def __init__(self, reply=b""):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn = self.sock.accept()[0]
                self.conns.append(conn)
                if self.reply:
                    conn.sendall(self.reply)
            except OSError:
                return

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("reply", [b"", b"HTTP/1.0 400 Bad Request\r\n\r\n" * 4])
def test_a_port_that_is_no_dask_scheduler_is_one_line_in_seconds(home, reply):
    """Catches: a hang of over 45 s on a silent port, and "not enough memory ... --hidden" when
    something else answers (Dask reads its reply as a huge frame length)."""
    pytest.importorskip("distributed", reason="Dask's distributed is the optional extra: pip install -e .[cluster]")
    env, library = home
    folder = tuning.sweep_folder(library)
    server = _Silent(reply)
    try:
        t0 = time.monotonic()
        proc = run(*TINY, "--epochs", "1", "--lr", "0.01", "0.02", "--scheduler", server.address, env=env)
        took = time.monotonic() - t0
    finally:
        server.close()
    assert_one_line_error(proc, 1, f"{server.address} did not answer as a Dask scheduler does")
    assert took < 20 and os.listdir(folder) == []


@pytest.mark.slow
def test_a_scheduler_without_workers_is_one_line(home):
    pytest.importorskip("distributed", reason="Dask's distributed is the optional extra: pip install -e .[cluster]")
    from distributed import LocalCluster
    env, library = home
    folder = tuning.sweep_folder(library)
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        proc = run(*TINY, "--epochs", "1", "--lr", "0.01", "0.02", "--scheduler", cluster.scheduler_address, env=env)
    assert_one_line_error(proc, 1, "has no workers", "dask worker")
    assert os.listdir(folder) == []


def test_a_cluster_that_cannot_import_the_project_is_one_line():
    from mnist_live.runs import trials as workers

    class Client:
        def run_on_scheduler(self, fn):
            return False

        def run(self, fn):
            return {"tcp://w1:1": True, "tcp://w2:2": fn()}

    with pytest.raises(studies.SweepFailed, match="cannot be imported on the scheduler of the Dask cluster at X"):
        workers._check_importable(Client(), "X")


def test_data_lost_with_a_worker_is_scattered_again():
    from mnist_live.runs import trials as workers

    class Future:
        def __init__(self, status):
            self.status = status

    class Client:
        scattered = 0

        def scatter(self, arrays, broadcast):
            Client.scattered += 1
            return {k: Future("finished") for k in arrays}

        def submit(self, *args, **kwargs):
            return Future("pending")

    class Queue:
        def __init__(self, *args, **kwargs):
            pass

    pool = workers.DaskPool.__new__(workers.DaskPool)
    pool.client, pool.arrays, pool.prefix, pool.futures = Client(), {"x_train": 1}, "p", []
    pool.distributed = type("distributed", (), {"Queue": Queue})
    pool.reports = Queue()
    pool.data = {"x_train": Future("finished")}
    pool.submit(workers.TrialJob(0, Config(), {}))
    assert Client.scattered == 0
    pool.data = {"x_train": Future("lost")}
    pool.submit(workers.TrialJob(1, Config(), {}))
    assert Client.scattered == 1 and pool.data["x_train"].status == "finished"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kills a worker process by pid")
def test_a_lost_dask_worker_costs_a_rerun_not_the_sweep(home):
    """Catches: every trial after a lost worker failing ("NoneType: None": the data set was
    scattered once and lost with it), and Optuna's "already reported" warnings."""
    pytest.importorskip("distributed", reason="Dask's distributed is the optional extra: pip install -e .[cluster]")
    from distributed import Client, LocalCluster
    env, library = home
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        proc = _start(["--headless", "--offline", "--hidden", "64", "--epochs", "10", "--lr", "0.001", "0.002",
                       "--sweep-name", "lost", "--scheduler", cluster.scheduler_address], env)
        try:
            _wait_for_line(proc, "started", timeout=90)
            time.sleep(1.0)
            victim = next(iter(client.run(os.getpid).values()))
            os.kill(victim, signal.SIGKILL)
            out, err = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "its Dask worker was lost; starting it again" in out
    assert "already reported" not in out + err and "NoneType" not in out + err
    rows = trials(library, "lost")
    finished = sorted(r["trial"] for r in rows if r["status"] == "finished")
    assert finished == [0, 1]
    assert [r["error"] for r in rows if r["status"] == "failed"][:1] == \
        ["its Dask worker was lost; the run was started again"]
