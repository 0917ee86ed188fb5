"""The typed records the window and the training process send each other.

The window sends an `Order` (a `Command` and its argument); the training process answers
with the reports below, each evaluation as `history.EvalRecord` (the one evaluation
record, end to end) and each measurement of training health as `health.HealthRecord`.
What the optimizer's steps did (`StepRecord`, `UpdateSummary`) and one parameter's state
(`Inspection`) come from `steps.StepWatch`. Each is a small frozen dataclass, so both sides (and the tests) speak
of the same fields. Plain data only: nothing of multiprocessing, so the window's telemetry
reads the reports without pulling in the process machinery (`process.py` owns that).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from mnist_live.training.history import History


class Command(enum.Enum):
    PAUSE = "pause"          # pause, publish the weights and evaluate the full test set
    RESUME = "resume"
    STEP = "step"            # one batch while paused
    DELAY = "delay"          # slow motion: seconds to sleep per batch
    SAVE = "save"            # save the model to `path`
    STOP = "stop"            # save to `path` if given, then exit
    SCALE_LR = "scale_lr"    # multiply the learning rate by `value` from now on
    SNAPSHOT = "snapshot"    # send the weights of snapshot `index`
    DIGIT_HISTORY = "digit_history"   # send test digit `index`'s prediction under every snapshot
    WATCH = "watch"          # the digit on screen: `pixels` (784,) uint8, its class `index` (-1: none), `token`
    INSPECT = "inspect"      # send an Inspection of parameter `at` (see Inspection.at), echoing `token`


@dataclass(frozen=True)
class Order:
    command: Command
    seconds: float = 0.0
    path: str | None = None
    value: float = 0.0
    index: int = -1
    pixels: object = None    # WATCH: (784,) uint8
    token: int = 0           # WATCH / INSPECT: echoed in the answers, so the window knows what they are of
    at: tuple = ()           # INSPECT: ("weight", pair, i, j) or ("bias", pair, j)


@dataclass(frozen=True)
class BatchReport:
    epoch: int               # 0-based epoch being trained
    batch: int               # batches done in this epoch
    n_batches: int
    losses: tuple            # (progress, loss) of every batch since the previous report
    accuracy: float          # running training accuracy in this epoch
    lr: float
    samples: int             # samples trained in this session so far
    time: float              # time.monotonic() when the batch ended


@dataclass(frozen=True)
class Position:
    epoch: int
    batch: int
    paused: bool


@dataclass(frozen=True)
class Finished:
    epoch: int


@dataclass(frozen=True)
class Saved:
    path: str
    reason: str


@dataclass(frozen=True)
class TrainerFailed:
    text: str
    diverged: bool           # False: the process died or failed otherwise


@dataclass(frozen=True)
class RunHistory:
    """The run's past, sent once at the start (a loaded model's curves); later evaluations
    come one by one as history.EvalRecord, the snapshots as SnapshotList."""
    history: History         # a copy: evaluations, loss curve, learning-rate changes
    snapshots: list          # (epoch, batch, progress) of each snapshot kept, oldest first


@dataclass(frozen=True)
class SnapshotList:
    snapshots: list          # (epoch, batch, progress) of each snapshot kept now, oldest first


@dataclass(frozen=True)
class LrChange:
    progress: float          # where the user steered the learning rate
    lr: float                # the effective learning rate from there on


@dataclass(frozen=True)
class SnapshotWeights:
    index: int
    info: tuple              # (epoch, batch, progress)
    weights: list            # float16 (fan_in, fan_out) per layer
    biases: list             # float16 (fan_out,) per layer


@dataclass(frozen=True)
class DigitHistory:
    index: int               # test digit
    rows: list               # per snapshot: (progress, predicted class, probability of the true class)


@dataclass(frozen=True)
class Notice:
    text: str                # e.g. a save that failed


# ------------------------------------------------------------ what the steps changed
@dataclass(frozen=True)
class UpdateSummary:
    """What a span of optimizer steps did to the weights: dw = the weights after minus the
    weights before (as applied, whatever the optimizer; not lr x gradient)."""
    before: tuple            # (epoch, batch) of the weights before the span
    after: tuple             # (epoch, batch) of the weights after it (= the published weights' stamp position)
    steps: int               # optimizer steps in the span (1: one batch)
    edges: list              # per layer pair: (src, dst, dw) arrays of the k largest |dw|, weakest first
    shares: list             # per layer pair: the share of the pair's sum |dw| those edges carry, in [0, 1]
    neuron_in: list          # per layer (h1, ..., out): (n,) float32, the norm of each neuron's incoming dw
    bias: list               # per layer: (n,) float32, each neuron's bias change
    ratio: list              # per layer pair: ||dw|| / ||w before||


@dataclass(frozen=True)
class DigitStep:
    """The watched digit (Command.WATCH) across one step."""
    token: int               # the WATCH order's token: the window shows it only while that digit is on screen
    probs_before: object     # (10,) float32 under the weights before the step
    probs_after: object      # (10,) float32 after it
    backward: object = None  # explain.backward.Backward under the weights before the step (detailed records)


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step, recorded when it was sampled, or in detail in step mode and slow
    motion. `seq` grows by one per record; `update.after` is the position of the weights
    after the step: the window shows a record only with the weights of that position."""
    seq: int
    detailed: bool           # step mode / slow motion: the batch and the digit's passes are filled in
    lr: float                # the learning rate of the step
    loss: float              # the batch's mean loss as trained (with dropout, if any): BatchStats.loss
    update: UpdateSummary    # this step's dw (steps == 1)
    digit: DigitStep | None  # the watched digit (None: the window watches none)
    indices: object = None   # detailed: (B,) int64 training-set indices of the batch, in batch order
    labels: object = None    # detailed: (B,) int64 their classes
    losses: object = None    # detailed: (B,) float32 each one's cross-entropy under the weights before the
                             # step, without dropout (with no dropout their mean is `loss`)


@dataclass(frozen=True)
class Inspection:
    """One parameter as the training process has it now, for a tooltip (Command.INSPECT)."""
    token: int
    at: tuple                # ("weight", pair, i, j) or ("bias", pair, j)
    position: tuple          # (epoch, batch) of the weights and the optimizer state read
    value: float             # the parameter now
    rule: object             # update_rule.RuleState: its optimizer state
    lr: float                # the learning rate of the next step
    weight_decay: float      # the decay applied to it (0 for a bias)
    last_dw: float | None    # its change in the last recorded step (StepRecord), None when none was
    last_step: tuple | None  # ((epoch, batch) before, after) of that step
