"""Sweep plans: the syntax (pure functions: values, ranges, the grid, the plan, the command
line of a Config) and the usage errors as a user meets them through `python main.py`."""
import pytest

from conftest import assert_one_line_error, run
from mnist_live.runs.sweep_plan import (
    Range,
    SweepError,
    Values,
    command_line,
    expand_grid,
    parse_hidden,
    parse_values,
    plan_sweep,
    trial_config,
)
from mnist_live.training.config import Config


# ------------------------------------------------------------------ syntax (pure)
def test_values_and_ranges_parse():
    assert parse_values("lr", ["0.001"]) == Values((0.001,))
    assert parse_values("lr", ["3e-4", "0.001"]) == Values((3e-4, 0.001))
    assert parse_values("optimizer", ["adam", "momentum"]) == Values(("adam", "momentum"))
    assert parse_values("lr", ["1e-4:1e-2:log"]) == Range(1e-4, 1e-2, True, False)
    assert parse_values("dropout", ["0:0.5"]) == Range(0.0, 0.5, False, False)
    assert parse_values("batch_size", ["32:256"]) == Range(32, 256, False, True)


@pytest.mark.parametrize("name, tokens, fragment", [
    ("lr", ["1e-2:1e-4"], "LO must be below HI"),
    ("lr", ["a:b"], "expected a number, got 'a'"),
    ("lr", ["0:1:log"], "must be > 0.0, got 0"),           # the bound of --lr comes first
    ("weight_decay", ["0:1:log"], "a log range needs LO > 0"),
    ("lr", ["1e-4:1e-2:ln"], "LO:HI or LO:HI:log"),
    ("lr", ["1:2:3:4"], "LO:HI or LO:HI:log"),
    ("batch_size", ["32:25.5"], "expected an integer"),
    ("dropout", ["0:1"], "must be < 1.0, got 1"),
    ("dropout", ["0.1", "0:0.5"], "not with other values"),
    ("optimizer", ["adam:sgd"], "not a range"),
    ("optimizer", ["adam", "rmsprop"], "invalid choice"),
    ("lr", ["0.001", "0.001"], "given twice"),
    ("epochs", ["0", "3"], "must be >= 1, got 0"),
])
def test_bad_specs_say_why(name, tokens, fragment):
    with pytest.raises(SweepError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        parse_values(name, tokens)


def test_hidden_sweeps_architectures_widths_and_depths():
    assert parse_hidden(["1024", "512"]) == ((1024, 512), {})                    # one run, as always
    assert parse_hidden(["512x256"]) == ((512, 256), {})
    assert parse_hidden(["512x256", "1024x512", "64"]) == \
        ((512, 256), {"hidden": Values(("512x256", "1024x512", "64"))})
    assert parse_hidden(["64,128,256"]) == ((64,), {"width": Values((64, 128, 256))})
    assert parse_hidden(["32:512:log"]) == ((32,), {"width": Range(32, 512, True, True)})
    assert parse_hidden(["128x1:3"]) == ((128,), {"depth": Range(1, 3, False, True)})
    assert parse_hidden(["64,128x2"]) == ((64, 64), {"width": Values((64, 128))})
    base = Config(hidden=(64, 64))
    assert trial_config(base, {"width": 128}).hidden == (128, 128)                # the fixed depth kept
    assert trial_config(Config(hidden=(128,)), {"depth": 3}).hidden == (128, 128, 128)
    assert trial_config(base, {"hidden": "512x256", "lr": 0.01}).hidden == (512, 256)
    for tokens, fragment in ((["0:64"], "must be >= 1"), (["64", "32:128"], "one token"),
                             (["64x0"], "must be >= 1"), (["128x1:9"], "1 to 8"), (["64,64"], "given twice"),
                             (["512x256", "512x256"], "given twice"), (["axb"], "expected an integer")):
        with pytest.raises(SweepError, match=fragment):
            parse_hidden(tokens)


def test_on_off_options_are_swept_with_yes_and_no():
    assert parse_values("augment", []) == Values((True,))
    assert parse_values("augment", ["no", "yes"]) == Values((False, True))
    with pytest.raises(SweepError, match="expected yes or no"):
        parse_values("nesterov", ["maybe"])


def test_grid_expansion_is_the_product_last_option_fastest():
    grid = expand_grid({"lr": Values((0.1, 0.2, 0.3)), "batch_size": Values((64, 128))})
    assert grid == [{"lr": lr, "batch_size": b} for lr in (0.1, 0.2, 0.3) for b in (64, 128)]
    assert len(expand_grid({"seed": Values(tuple(range(10))), "epochs": Values(tuple(range(1, 101)))})) == 1000
    with pytest.raises(SweepError, match="1,010 combinations"):
        expand_grid({"seed": Values(tuple(range(10))), "epochs": Values(tuple(range(1, 102)))})


def test_plan_sweep_tells_a_run_from_a_sweep():
    base = Config(headless=True)
    assert plan_sweep(base, {"lr": Values((0.001,))}, {}) is None
    plan = plan_sweep(base, {"lr": Values((0.001, 0.003)), "epochs": Values((2,))}, {})
    assert plan.kind == "grid" and list(plan.specs) == ["lr"] and plan.pruner == "none"
    plan = plan_sweep(base, {"lr": Range(1e-4, 1e-2, True, False)}, {"search": 8})
    assert plan.kind == "search" and plan.pruner == "median"
    with pytest.raises(SweepError, match="needs --search"):
        plan_sweep(base, {"lr": Range(1e-4, 1e-2, True, False)}, {})
    with pytest.raises(SweepError, match="needs something|for sweeps"):
        plan_sweep(base, {}, {"search": 8})
    with pytest.raises(SweepError, match="--headless"):
        plan_sweep(Config(), {"lr": Values((0.001, 0.003))}, {})
    with pytest.raises(SweepError, match="--seed seeds the sampler"):
        plan_sweep(base, {"seed": Values((1, 2))}, {"search": 4})
    with pytest.raises(SweepError, match="--metrics is for one run"):
        plan_sweep(Config(headless=True, metrics="m.json"), {"lr": Values((0.001, 0.003))}, {})
    with pytest.raises(SweepError, match="not with --epochs"):
        plan_sweep(base, {}, {"resume": "s1"}, given=["epochs", "headless"])
    with pytest.raises(SweepError, match="give --seed one value"):
        plan_sweep(base, {"seed": Values((1, 2))}, {"repeats": 3})
    with pytest.raises(SweepError, match="not with --pruner none"):
        plan_sweep(base, {"lr": Values((0.001, 0.003))}, {"prune_after": 2.0})
    assert plan.base.val == 10_000                                   # sweeps choose on a validation split
    assert plan_sweep(Config(headless=True, offline=True), {"lr": Values((1e-3, 3e-3))}, {}).base.val == 1000
    assert plan_sweep(Config(headless=True, val=0), {"lr": Values((1e-3, 3e-3))}, {}).base.val == 0


def test_command_line_of_a_config_reproduces_it():
    from mnist_live import main
    config = Config(hidden=(64,), lr=0.003, batch_size=64, offline=True, train_size=500, headless=True)
    words = command_line(config)
    assert words[:2] == ["mnist-live", "--headless"]
    again, _ = main.parse_config(words[1:])
    assert again.hyperparameters() == config.hyperparameters() and again.train_size == 500 and again.offline


# ------------------------------------------------------------------ usage errors through main.py
@pytest.mark.parametrize("args, fragment", [
    (["--lr", "1e-2:1e-4", "--search", "4"], "argument --lr: empty range"),
    (["--lr", "a:b", "--search", "4"], "argument --lr: expected a number, got 'a'"),
    (["--weight-decay", "0:1:log", "--search", "4"], "a log range needs LO > 0"),
    (["--lr", "1e-4:1e-2:log"], "a range needs --search N"),
    (["--search", "4"], "for sweeps"),
    (["--dropout", "0.2", "1.5"], "argument --dropout: must be < 1.0, got 1.5"),
    (["--seed", *map(str, range(11)), "--epochs", *map(str, range(1, 101))], "at most 1,000"),
    (["--lr", "abc"], "argument --lr: expected a number, got 'abc'"),      # one run: as before
    (["--hidden", "32:128"], "--hidden 32:128: a range needs --search N"),
    (["--hidden", "0:64", "--search", "4"], "argument --hidden: must be >= 1"),
    (["--augment", "maybe"], "argument --augment: expected yes or no"),
    (["--optimizer", "adam:sgd", "--search", "4"], "invalid choice: 'adam:sgd'"),
    (["--lr", "0.1", "0.2", "--scheduler", ""], "argument --scheduler: expected a Dask scheduler's address"),
    (["--lr", "0.1", "0.2", "--scheduler", "tcp://host:99999"], "expected a Dask scheduler's address"),
    (["--lr", "0.1", "0.2", "--scheduler", "a b"], "expected a Dask scheduler's address"),
    (["--lr", "0.1", "0.2", "--repeats", "0"], "argument --repeats: must be >= 1"),
    (["--seed", "1", "2", "--repeats", "2"], "give --seed one value"),
])
def test_sweep_usage_errors_are_one_line_exit_2(args, fragment):
    proc = run(*args, "--headless", "--offline")
    assert_one_line_error(proc, 2, fragment)
    assert len(proc.stderr.strip().splitlines()) == 1                  # no usage block before it


def test_the_help_offers_ranges_only_where_they_are_accepted():
    from mnist_live import main
    parser = main.build_parser()
    helps = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings}
    for choice in ("--optimizer", "--activation", "--lr-schedule"):
        assert "several values sweep it" in helps[choice] and "LO:HI" not in helps[choice], helps[choice]
    assert "(with --search, so does a range LO:HI[:log])" in helps["--lr"]
    assert "32:512[:log]" in helps["--hidden"] and "no yes sweeps it" in helps["--augment"]
    assert {"--repeats", "--prune-after", "--val"} <= set(helps)
