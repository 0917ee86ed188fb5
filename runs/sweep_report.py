"""What a sweep shows: the live lines while it runs and the leaderboard at the end.

What it owns: the leaderboard (`leaderboard`, pure: one row per configuration, ranked by
validation accuracy, or by test accuracy in a sweep without a validation split, the mean
+- std over the repeats), the best configuration (`best_trial`), and `Progress`: on a
terminal one live line per running trial plus an overall line (configurations done of
all, pruned, best so far, ETA), each cut to the terminal's width so none wraps; in a log
or pipe a plain line when each trial starts and ends.

A row is a dict: number, params ({axis: value}), status, val and test (lists: one accuracy
per repeat that has one), wall_s, progress (epochs trained), and whatever else the caller
keeps in it.

Imports: the standard library; tqdm when drawing on a terminal.
"""
from __future__ import annotations

import math
import shutil
import statistics
import sys
import time

STATUS_ORDER = {"finished": 0, "pruned": 1, "interrupted": 2, "diverged": 3, "failed": 4, "running": 5}


def format_value(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def mean(values):
    return statistics.fmean(values) if values else None


def accuracy_text(values, repeats):
    """"97.12" for one accuracy, "97.12 +- 0.08" for several, "-" for none (percent)."""
    if not values:
        return "-"
    text = f"{100 * mean(values):.2f}"
    if repeats > 1:
        spread = 100 * statistics.stdev(values) if len(values) > 1 else math.nan
        text += f" +- {spread:.2f}" if len(values) > 1 else " +- -"
        if len(values) < repeats:
            text += f" ({len(values)}/{repeats})"
    return text


def ranking_key(has_val):
    """Best first: finished by mean validation accuracy (test without a split), then pruned,
    interrupted, diverged, failed; ties by trial number."""
    measure = "val" if has_val else "test"

    def key(row):
        m = mean(row.get(measure) or [])
        return STATUS_ORDER.get(row["status"], 9), -(m if m is not None else -1), row["number"]
    return key


def leaderboard(rows, axes, has_val=True, repeats=1):
    """Markdown table lines of `rows` (see the module docstring), best first; `axes`: the
    swept parameters, one column each."""
    head = ["rank", "trial", *axes, "status", *(["val acc %"] if has_val else []), "test acc %",
            "epochs", "time s"]
    body = []
    for rank, r in enumerate(sorted(rows, key=ranking_key(has_val)), start=1):
        body.append([str(rank), str(r["number"]), *(format_value(r["params"].get(k, "-")) for k in axes), r["status"],
                     *([accuracy_text(r.get("val"), repeats)] if has_val else []),
                     accuracy_text(r.get("test"), repeats), f"{r.get('progress', 0):.2f}",
                     f"{r['wall_s']:.1f}" if r.get("wall_s") else "-"])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(head, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in body]
    return out


def ranked_by(has_val, repeats):
    """The line under the leaderboard's title saying what it ranks by."""
    what = "mean validation accuracy" if has_val and repeats > 1 else "validation accuracy" if has_val else \
        "test accuracy (no validation split: --val 0)"
    tail = f" over {repeats} seeds (+- is the standard deviation)" if repeats > 1 else ""
    test = "; the test set is scored once, for each finished trial" if has_val else ""
    return f"Ranked by {what}{tail}{test}."


def best_trial(rows, has_val=True):
    measure = "val" if has_val else "test"
    done = [r for r in rows if r["status"] == "finished" and r.get(measure)]
    return max(done, key=lambda r: (mean(r[measure]), -r["number"])) if done else None


# ------------------------------------------------------------------ live lines
def fit(text, width):
    """`text` cut to `width` characters (an ellipsis marks the cut)."""
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


class Progress:
    """Live lines on a terminal (tqdm: one per worker slot, the overall line below them),
    plain lines when each trial starts and ends otherwise. `total`: runs to train."""

    BAR = 12                      # characters of each bar

    def __init__(self, out=None, total=0, slots=1, has_val=True, columns=None):
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.bars, self.total, self.slots, self.has_val = {}, total, slots, has_val
        self.columns = columns
        self.done = self.pruned = 0
        self.best = None                         # (accuracy, trial number)
        self.t0 = time.monotonic()
        self.overall = None

    def width(self):
        return self.columns or shutil.get_terminal_size((100, 24)).columns

    def _bar(self, position, total):
        from tqdm import tqdm
        return tqdm(total=total, position=position, leave=False, file=self.out, bar_format="{desc}")

    def _set(self, bar, head, text):
        """Draw `bar`'s line: its head, a bar of how far it is, the text, cut to the terminal."""
        done = int(self.BAR * min(bar.n / bar.total, 1.0)) if bar.total else 0
        line = f"{head}|{'#' * done}{' ' * (self.BAR - done)}| {text}"
        bar.set_description_str(fit(line, self.width() - 1), refresh=True)

    def start(self, key, slot, epochs, label, at=0.0):
        """Run `key` started (`at`: the epoch it continues from, after an interruption)."""
        if not self.tty:
            number, _, params = label.partition(": ")
            self.line(f"trial {number} " + (f"continued from epoch {at:.2f}" if at else "started") + f": {params}")
            return
        if self.overall is None:
            self.overall = self._bar(self.slots, max(self.total, 1))
            self._overall()
        self.bars[key] = self._bar(slot, epochs)
        self._set(self.bars[key], f"trial {label.split(':')[0]:>4} ", label.partition(": ")[2])

    def update(self, key, progress, label, text):
        bar = self.bars.get(key)
        if bar is not None:
            bar.n = min(progress, bar.total)
            self._set(bar, f"trial {label.split(':')[0]:>4} ", f"{text}  {label.partition(': ')[2]}")

    def end(self, key, text, status=None, accuracy=None, number=None):
        bar = self.bars.pop(key, None)
        if bar is not None:
            bar.close()
        self.done += 1
        self.pruned += status == "pruned"
        if status == "finished" and accuracy is not None and (self.best is None or accuracy > self.best[0]):
            self.best = (accuracy, number)
        self.line(text)
        self._overall()

    def _overall(self):
        if self.overall is None:
            return
        elapsed = time.monotonic() - self.t0
        eta = elapsed / self.done * (self.total - self.done) if self.done else None
        measure = "val" if self.has_val else "test"
        best = f"best {measure} {100 * self.best[0]:.2f} % (trial {self.best[1]})" if self.best else "best -"
        text = (f"ETA {_clock(eta) if eta is not None else '-'}  {best}  {self.pruned} pruned  "
                f"elapsed {_clock(elapsed)}")
        self.overall.n = min(self.done, self.overall.total)
        self._set(self.overall, f"sweep {self.done}/{self.total} ", text)

    def line(self, text):
        if self.tty:
            from tqdm import tqdm
            tqdm.write(fit(text, self.width() - 1), file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def close(self):
        for bar in [*self.bars.values(), *([self.overall] if self.overall is not None else [])]:
            bar.close()
        self.bars.clear()
        self.overall = None


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"
