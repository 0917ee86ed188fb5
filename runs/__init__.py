"""Runs remembered and compared, and hyperparameter sweeps.

    library      the run library: an SQLite database of every run
    rows         its rows decoded and checked (damaged ones skipped), its read-only opening
    recorder     writing one run into the library as it trains
    writer       the recorder's background writer, retries and hand-off files
    command      `mnist-live runs`: leaderboard, show, compare, rm
    export       `mnist-live runs export`: CSV and JSON, streamed
    comparison   earlier runs overlaid on the window's charts, the leaderboard, a watched sweep
    sweep_plan   what a sweep's command line asks for (pure)
    sweeps       running a sweep: the Optuna study, pruning, progress, the summary
    trials       one trial where it runs, and the local and Dask pools of workers

Imports `training` (config, files) and the standard library; `library`, `rows`, `command`
and `export` never import NumPy, so `mnist-live runs` answers at once. Importing the package imports nothing.
"""
