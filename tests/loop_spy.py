"""A spy observer of the training loop for the tests: it appends each event it sees to a file,
so it reports from another process too (the window's training process)."""
from mnist_live.training.loop import Observer


class EventLog(Observer):
    """One line per event: start, batch, evaluation <kind>, epoch_end, end <status>."""

    def __init__(self, path, log=None):
        self.path = path

    def write(self, line):
        with open(self.path, "a") as f:
            f.write(line + "\n")

    def on_start(self, run):
        self.write("start")

    def on_batch(self, run, stats):
        self.write("batch")

    def on_evaluation(self, run, record):
        self.write(f"evaluation {record.kind}")

    def on_epoch_end(self, run, stats):
        self.write("epoch_end")

    def on_end(self, run, outcome):
        self.write(f"end {outcome.status}")


def events(path):
    """The events in the file, from the run's start on, without the subset evaluations (those
    are asked for by each driver's own observers: the window's and a sweep's checkpoints)."""
    lines = path.read_text().split()
    lines = path.read_text().splitlines()
    lines = lines[lines.index("start"):]
    return [e for e in lines if e != "evaluation subset"]
