"""`mnist-live runs export`: the runs (those --where and --last select) as CSV or JSON,
streamed one run at a time to standard output or to a file written atomically (temp file,
then rename), so an export of 100,000 runs holds one run in memory, not all of them
(bench/bench_runs.py measures its peak memory). Damaged rows are skipped with one line.

Imports: the standard library, runs.command (the tables' text and the reproduce command),
runs.library, runs.rows, and training.files. No NumPy.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys

from mnist_live.runs import command
from mnist_live.runs.rows import DamagedRun
from mnist_live.runs.schema import SCHEMA_VERSION
from mnist_live.training import config as config_module

CSV_FIELDS = ("id", "status", "started", "ended", "dataset", "data_source", "n_train", "n_test", "test_accuracy",
              "best_accuracy", "time_to_97", "time_to_98", "wall_s", "samples_per_s", "n_evals", "sweep", "trial",
              "model_file", "host", "pid", "error")


def csv_header(hp_names):
    """The CSV export's columns: the summary fields, one per hyperparameter (Config's, then
    the others stored in `hp_names`), the command; and the hyperparameters among them."""
    hps = list(config_module.HYPERPARAMETERS)
    hps += sorted(set(hp_names) - set(hps) - {"dataset"})
    hps = [h for h in hps if h != "dataset"]
    return [*CSV_FIELDS, *hps, "command"], hps


def csv_row(r, hps):
    row = ["" if r[k] is None else r[k] for k in CSV_FIELDS]
    hyper = r["hyperparameters"]
    row += [command.hp_text(hyper.get(h)) if h == "hidden" else hyper.get(h, "") for h in hps]
    row.append(command.command_text(r["config"]))
    return row


def _write_csv(lib, query, out):
    """Stream the selected runs to `out` as CSV, one at a time; how many."""
    header, hps = csv_header(lib.hyperparameter_names(conditions=query["conditions"], last=query["last"]))
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    n = 0
    for r in lib.iter_runs(**query):
        w.writerow(csv_row(r, hps))
        n += 1
    return n


def _write_json(lib, query, out):
    """Stream {"schema": N, "runs": [every field, evaluations and curves]} to `out`, one run
    at a time (100,000 runs never sit in memory together); how many."""
    out.write(f'{{"schema": {SCHEMA_VERSION}, "runs": [')
    n, skipped = 0, []
    runs = lib.iter_runs(**query)
    for r in runs:
        try:
            r.update(lib.details(r["id"]))
        except DamagedRun as e:
            skipped.append((r["id"], str(e)))
            continue
        out.write(("," if n else "") + "\n" + json.dumps(r))       # one run a line: the C encoder (indent: 2.6x slower)
        n += 1
    out.write("\n]}\n")
    lib.skipped += skipped
    return n


def export(lib, args):
    """`runs export --csv FILE|- / --json FILE|-`: its exit status."""
    query = {**command.query(args), "last": args.last or None}          # --last 0: all
    target, write = (args.csv, _write_csv) if args.csv is not None else (args.json, _write_json)
    if target == "-":
        n = write(lib, query, sys.stdout)
    else:
        from mnist_live.training.files import atomic_file
        try:
            with atomic_file(os.path.expanduser(target)) as f:
                out = io.TextIOWrapper(f, encoding="utf-8", newline="")
                n = write(lib, query, out)
                out.flush()
                out.detach()
        except OSError as e:
            print(f"error: could not write {target}: {e.strerror or e}", file=sys.stderr)
            return 1
    command.warn_damaged(lib.skipped)
    if target != "-":
        print(f"wrote {n:,} run{'s' if n != 1 else ''} to {target}")
    return 0
