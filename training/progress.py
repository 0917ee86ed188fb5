"""The progress of a run in the terminal: tqdm bars and one line per epoch (an observer of
the training loop). Imports tqdm (on first use) and the loop's Observer."""
from __future__ import annotations

import sys
import time

from mnist_live.training.loop import Observer


class HeadlessProgress(Observer):
    """tqdm bars for a headless run, counted in training samples: one for the whole run
    and one for the current epoch, each with its rate, elapsed time and ETA, the epoch's
    mean loss and accuracy in the epoch bar. The bars go to stderr and only when it is a
    terminal (tqdm's disable=None); `on_epoch_end` prints one line per epoch to stdout either
    way, so a log or a pipe gets exactly one line per epoch and no carriage returns."""

    def __init__(self, trainer, config):
        from tqdm import tqdm
        self.tqdm, self.config = tqdm, config
        self.n = len(trainer.x_train)
        in_epoch = min(trainer.position[1] * config.batch_size, self.n)
        self.start_samples = trainer.epoch * self.n + in_epoch
        self.t_start = self.t_epoch = time.perf_counter()
        self.loss_sum, self.loss_count = 0.0, 0
        self.run_bar = tqdm(total=config.epochs * self.n, initial=self.start_samples, desc="run",
                            unit=" samples", unit_scale=True, smoothing=0, dynamic_ncols=True, disable=None)
        self.epoch_bar = None

    def on_batch(self, run, stats):
        """After each training batch (stats: trainer.BatchStats)."""
        self.loss_sum += stats.loss
        self.loss_count += 1
        if self.run_bar.disable:
            return
        seen = min(stats.batch * self.config.batch_size, self.n)      # samples done in this epoch
        if self.epoch_bar is None:
            first = min((stats.batch - 1) * self.config.batch_size, self.n)
            desc = f"epoch {stats.epoch + 1}/{self.config.epochs}"
            self.epoch_bar = self.tqdm(total=self.n, initial=first, desc=desc, unit=" samples", unit_scale=True,
                                       leave=False, dynamic_ncols=True)
        self.epoch_bar.set_postfix_str(f"loss {self.mean_loss():.4f}  acc {100 * stats.accuracy:.2f} %", refresh=False)
        step = seen - self.epoch_bar.n
        self.run_bar.update(step)
        self.epoch_bar.update(step)                                     # redraws at most every 0.1 s

    def mean_loss(self):
        return self.loss_sum / max(self.loss_count, 1)

    def on_epoch_end(self, run, stats):
        """After an epoch's evaluation (test, or validation with --val): its line (trainer.epoch
        is the epoch just done)."""
        trainer = run.trainer
        ev, measured = (run.last_full, "test acc") if run.val is None else (run.last_val, "val acc")
        now = time.perf_counter()
        done = trainer.epoch * self.n - self.start_samples                   # samples trained in this run
        left = (self.config.epochs - trainer.epoch) * self.n
        eta = (now - self.t_start) / done * left if done > 0 else 0.0       # evaluations included
        line = (f"epoch {trainer.epoch}/{self.config.epochs}  loss {self.mean_loss():.4f}  "
                f"train acc {100 * stats.accuracy:6.2f} %  {measured} {100 * ev.accuracy:6.2f} %  "
                f"{stats.samples_per_s:7.0f} samples/s  epoch {now - self.t_epoch:5.1f} s  "
                f"elapsed {self.tqdm.format_interval(now - self.t_start)}  ETA {self.tqdm.format_interval(eta)}")
        self.close_epoch()
        self.say(line)
        self.t_epoch = now
        self.loss_sum, self.loss_count = 0.0, 0

    def say(self, line):
        """A line on stdout between the bars (they are redrawn below it)."""
        self.tqdm.write(line, file=sys.stdout)
        sys.stdout.flush()

    def close_epoch(self):
        if self.epoch_bar is not None:
            self.epoch_bar.close()
            self.epoch_bar = None

    def on_end(self, run, outcome):
        """The bars go before any message the run ends with."""
        self.close_epoch()
        self.run_bar.close()
