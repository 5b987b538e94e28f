"""Sequence regression: forecasting two real-valued time series with recurrent networks.

Two synthetic series (generated here, nothing is downloaded), each observed with noise:

A. a noisy sine wave, period 40 steps, noise std 0.10;
B. a compound oscillation, 0.6 sin(2 pi t / 24) + 0.4 sin(2 pi t / 9.3 + 1), whose two
   incommensurate periods never repeat exactly, noise std 0.05.

The first 1000 steps of each are for training, the next 500 for testing. Both use
``rnnlab.models.SequenceRegressor`` (an LSTM and a Linear head, MSE loss, Adam with a
cosine learning-rate decay), on windows cut by ``rnnlab.data.series.make_windows`` (the
command ``rnnlab train --task forecast --csv FILE --column NAME`` trains the many-to-one
form on a column of a CSV file):

* A, **many-to-one**: a window of the last 24 observations -> the next observation.
* B, **many-to-many**: a window of 48 observations -> the next observation at every
  step (targets = the window shifted by one).

Each is scored twice on the test part:

* one-step forecasts against the noisy observations, as a ratio to the noise variance
  (the best any forecaster can do is a ratio of ~1: noise cannot be predicted), next to
  the naive "tomorrow = today" persistence forecast;
* a **free-running** forecast: after a stretch of real observations the model is fed
  its own predictions for the next steps (A: 80 steps by sliding the window; B: 60
  steps one at a time, carrying the LSTM state with ``final_state()``), scored by
  R^2 = 1 - MSE / variance against the noise-free signal.

Success (full run): one-step MSE below 1.5 (A) and 2.0 (B) times the noise variance,
and free-running R^2 above 0.9 for both. ``--quick`` trains less and asks for one-step
ratios below 3 (A) and 4 (B) and R^2 above 0.5. ``--plot PATH`` draws forecasts against the truth
(needs matplotlib; without it the plot is skipped with a message).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from rnnlab.data.series import make_windows
from rnnlab.models.regressor import SequenceRegressor
from rnnlab.optim import Adam, CosineAnnealing, clip_grad_norm

N_STEPS, N_TRAIN = 1500, 1000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer epochs, weaker criteria (the test suite's run)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the noise, the initial weights and the batch order")
    parser.add_argument("--hidden", type=int, default=32, help="LSTM hidden size")
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam's initial learning rate (default 0.02, 0.01 with --quick)")
    parser.add_argument("--plot", metavar="PATH", default=None,
                        help="save a plot of the forecasts (PNG) when matplotlib is installed")
    return parser.parse_args()


# ----------------------------------------------------------------------- data
def make_series(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """``name -> (clean signal, noisy observations, noise std)``, ``N_STEPS`` each."""
    t = np.arange(N_STEPS)
    sine = np.sin(2 * np.pi * t / 40)
    compound = 0.6 * np.sin(2 * np.pi * t / 24) + 0.4 * np.sin(2 * np.pi * t / 9.3 + 1.0)
    series = {}
    for name, clean, noise in (("A: noisy sine", sine, 0.10),
                               ("B: compound oscillation", compound, 0.05)):
        series[name] = (clean, clean + noise * rng.standard_normal(N_STEPS), noise)
    return series


# ------------------------------------------------------------------- training
def train(model: SequenceRegressor, inputs: np.ndarray, targets: np.ndarray, epochs: int,
          rng: np.random.Generator, lr: float, batch_size: int = 32) -> None:
    optimizer = Adam(model, lr=lr)
    batches_per_epoch = -(-len(inputs) // batch_size)
    schedule = CosineAnnealing(optimizer, total_steps=epochs * batches_per_epoch)  # lr -> 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(inputs))  # shuffle the windows each epoch
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = model.forward_loss(inputs[batch], targets[batch])
            optimizer.zero_grad()
            model.backward()
            clip_grad_norm(model, 1.0)
            optimizer.step()
            schedule.step()
            total += loss * len(batch)
        if epoch == 1 or epoch == epochs or epoch % max(1, epochs // 4) == 0:
            print(f"    epoch {epoch:3d}  train MSE {total / len(inputs):.5f}")


# ------------------------------------------------------------- free-running
def free_run_many_to_one(model: SequenceRegressor, history: np.ndarray, width: int,
                         horizon: int) -> np.ndarray:
    """Forecast ``horizon`` steps: predict, append the prediction, slide the window."""
    window = list(history[-width:])
    out = []
    for _ in range(horizon):
        x = np.asarray(window[-width:], dtype=np.float32)[None, :, None]  # (1, width, 1)
        y = float(model.forward(x)[0, 0])
        out.append(y)
        window.append(y)
    return np.array(out)


def free_run_many_to_many(model: SequenceRegressor, history: np.ndarray,
                          horizon: int) -> np.ndarray:
    """Read ``history`` once, then feed each prediction back in, one step at a time,
    carrying the LSTM state from call to call."""
    pred = model.forward(history.astype(np.float32)[None, :, None])  # (1, T, 1)
    state = model.final_state()
    y = float(pred[0, -1, 0])  # the forecast of the first step after the history
    out = [y]
    for _ in range(horizon - 1):
        pred = model.forward(np.array([[[y]]], dtype=np.float32), state=state)
        state = model.final_state()
        y = float(pred[0, 0, 0])
        out.append(y)
    return np.array(out)


def r_squared(forecast: np.ndarray, truth: np.ndarray) -> float:
    return 1.0 - float(np.mean((forecast - truth) ** 2) / np.var(truth))


# ------------------------------------------------------------------- the two tasks
def task_many_to_one(name: str, clean: np.ndarray, obs: np.ndarray, noise: float,
                     epochs: int, args: argparse.Namespace, rng: np.random.Generator) -> dict:
    width, horizon = 24, 80
    print(f"{name}: many-to-one, window {width} -> next value, LSTM({args.hidden}), "
          f"{epochs} epochs")
    model = SequenceRegressor(1, args.hidden, 1, cell="lstm", rng=rng)
    train(model, *make_windows(obs[:N_TRAIN], width, many_to_many=False), epochs, rng, args.lr)
    # one-step forecasts over the test part (windows end inside it)
    x_test, y_test = make_windows(obs[N_TRAIN - width :], width, many_to_many=False)
    one_step = model.forward(x_test)[:, 0]
    mse = float(np.mean((one_step - y_test[:, 0]) ** 2))
    naive = float(np.mean((x_test[:, -1, 0] - y_test[:, 0]) ** 2))  # persistence
    # free-running from the start of the test part
    free = free_run_many_to_one(model, obs[:N_TRAIN], width, horizon)
    r2 = r_squared(free, clean[N_TRAIN : N_TRAIN + horizon])
    return {"name": name, "mse": mse, "naive": naive, "noise": noise, "r2": r2,
            "horizon": horizon, "one_step": one_step, "one_step_start": N_TRAIN,
            "free": free, "free_start": N_TRAIN}


def task_many_to_many(name: str, clean: np.ndarray, obs: np.ndarray, noise: float,
                      epochs: int, args: argparse.Namespace, rng: np.random.Generator) -> dict:
    width, warmup, horizon = 48, 12, 60
    print(f"{name}: many-to-many, window {width} -> next value at every step, "
          f"LSTM({args.hidden}), {epochs} epochs")
    model = SequenceRegressor(1, args.hidden, 1, cell="lstm", many_to_many=True, rng=rng)
    train(model, *make_windows(obs[:N_TRAIN], width, many_to_many=True, stride=2), epochs, rng,
          args.lr)
    # one-step: run over the whole test part in one sequence, after a warm-up on training data
    start = N_TRAIN - warmup
    pred = model.forward(obs[start:-1].astype(np.float32)[None, :, None])[0, warmup - 1 :, 0]
    truth = obs[N_TRAIN:]
    mse = float(np.mean((pred - truth) ** 2))
    naive = float(np.mean((obs[N_TRAIN - 1 : -1] - truth) ** 2))
    # free-running: read 100 test observations, then forecast the next 60 steps
    context_end = N_TRAIN + 100
    free = free_run_many_to_many(model, obs[N_TRAIN:context_end], horizon)
    r2 = r_squared(free, clean[context_end : context_end + horizon])
    return {"name": name, "mse": mse, "naive": naive, "noise": noise, "r2": r2,
            "horizon": horizon, "one_step": pred, "one_step_start": N_TRAIN,
            "free": free, "free_start": context_end}


# ------------------------------------------------------------------------ plot
def plot(path: str, series: dict, results: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"plot skipped: matplotlib is not installed (pip install matplotlib); "
              f"{path} not written")
        return
    fig, axes = plt.subplots(len(results), 1, figsize=(11, 3.2 * len(results)))
    for ax, res in zip(np.atleast_1d(axes), results, strict=True):
        clean, obs, _ = series[res["name"]]
        view = np.arange(N_TRAIN - 60, N_STEPS)
        ax.plot(view, obs[view], ".", ms=2, color="0.6", label="observed (noisy)")
        ax.plot(view, clean[view], color="k", lw=1, label="truth (noise-free)")
        t1 = res["one_step_start"] + np.arange(len(res["one_step"]))
        ax.plot(t1, res["one_step"], color="tab:blue", lw=1, label="one-step forecast")
        t2 = res["free_start"] + np.arange(len(res["free"]))
        ax.plot(t2, res["free"], color="tab:red", lw=2,
                label=f"free-running forecast (R$^2$ {res['r2']:.3f})")
        ax.axvline(N_TRAIN, color="0.3", ls="--", lw=0.8)
        ax.set_title(res["name"])
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    axes_last = np.atleast_1d(axes)[-1]
    axes_last.set_xlabel("time step (dashed line: end of the training data)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    epochs = (4, 8) if args.quick else (15, 30)
    args.lr = args.lr or (0.01 if args.quick else 0.02)  # a short run is safer with a lower lr
    max_ratio = (3.0, 4.0) if args.quick else (1.5, 2.0)
    min_r2 = 0.5 if args.quick else 0.9
    print(f"time_series: {N_STEPS} steps per series, train on the first {N_TRAIN}, "
          f"seed {args.seed}")
    series = make_series(rng)
    names = list(series)
    results = [task_many_to_one(names[0], *series[names[0]], epochs[0], args, rng),
               task_many_to_many(names[1], *series[names[1]], epochs[1], args, rng)]

    ok = True
    print("results on the test part (steps 1000-1499):")
    for res, limit in zip(results, max_ratio, strict=True):
        ratio = res["mse"] / res["noise"] ** 2
        passed = ratio < limit and res["r2"] > min_r2
        ok &= passed
        print(f"  {res['name']}: one-step MSE {res['mse']:.5f} = {ratio:.2f} x noise variance "
              f"(limit {limit:g}; persistence {res['naive']:.5f}), free-running "
              f"{res['horizon']} steps R^2 {res['r2']:.3f} (limit {min_r2:g})  "
              f"{'ok' if passed else 'FAIL'}")
    if args.plot:
        plot(args.plot, series, results)
    elapsed = time.perf_counter() - started
    if ok:
        print(f"SUCCESS: both series forecast within the limits ({elapsed:.1f} s)")
        return 0
    print("FAILURE: a forecast missed its limit")
    return 1


if __name__ == "__main__":
    sys.exit(main())
