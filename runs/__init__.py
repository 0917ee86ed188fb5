"""Runs remembered and compared, and hyperparameter sweeps.

    library         the run library: an SQLite database of every run (opening, transactions, runs)
    schema          its tables and the statements that write and read them
    host            this host: whether a run's process still runs, the machine it trained on
    rows            its rows decoded and checked (damaged ones skipped), its read-only opening
    recorder        writing one run into the library as it trains
    writer          the recorder's background writer, retries and hand-off files
    command         `mnist-live runs`: leaderboard, show, compare, rm
    export          `mnist-live runs export`: CSV and JSON, streamed
    comparison      earlier runs overlaid on the window's charts, the leaderboard, a watched sweep
    sweep_plan      what a sweep's command line asks for (pure)
    sweeps          running a sweep: the parent's loop, asking the study for configurations
    sweep_messages  a sweep's runs and the workers' messages: recording, judging checkpoints, ends
    study           a sweep's Optuna study: journal, lock, search space, reproducible sampling and pruning
    sweep_end       a sweep from start to end: the study made once it can run, the summary, --save
    sweep_report    the live lines and the leaderboard (pure)
    trials          one trial where it runs, and the local and Dask pools of workers
    analysis        `runs sweeps`, `runs analyze`, like with like, the watched sweep's views (pure)

Imports `training` (config, files) and the standard library; `library`, `schema`, `host`,
`rows`, `command` and `export` never import NumPy, so `mnist-live runs` answers at once.
Importing the package imports nothing.
"""
