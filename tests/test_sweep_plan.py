"""Sweep plans: the syntax (pure functions: values, ranges, the grid, the plan, the command
line of a Config) and the usage errors as a user meets them through `python main.py`."""
import pytest

from conftest import assert_one_line_error, run
from mnist_live.runs.sweep_plan import Range, SweepError, Values, command_line, expand_grid, parse_values, plan_sweep
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
])
def test_sweep_usage_errors_are_one_line_exit_2(args, fragment):
    assert_one_line_error(run(*args, "--headless", "--offline"), 2, fragment)


def test_a_sweep_needs_headless():
    assert_one_line_error(run("--offline", "--lr", "0.001", "0.003"), 2, "add --headless", "window takes one run")
