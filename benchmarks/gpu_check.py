"""rnnlab's CuPy path on a real card, in one command with a time budget for each part.

    PYTHONPATH=src python benchmarks/gpu_check.py --out "$OUT" [--budget-scale F]
                                                  [--data DIR] [--only PARTS] [--dry-run]

Parts, in order (budgets in seconds at ``--budget-scale 1``; they sum to 470 s, and a
deadline of 470 s from the start caps the whole, so the command ends within 8 minutes;
most parts end well before their budgets):

=============  ======  =================================================================
part           budget  what
=============  ======  =================================================================
env              20    Python, numpy, CuPy, CUDA runtime/driver, the card's name and
                       memory, PyTorch and cuDNN; a CuPy smoke test
tests            85    ``pytest -m gpu tests/gpu`` (the fused-kernel comparisons, the
                       PyTorch fixtures and float64 gradient checks on the device), ``-x``
                       off, 45 s per test (see "Hangs" below)
bench-C          40    ``bench_vs_torch.py --device gpu --configs C``: 2 x LSTM 650,
                       batch 20, T 35, V 10000, rnnlab on CuPy against torch.nn.LSTM with
                       cuDNN on the same card: tokens/s and the ratio (target >= 0.5x)
bench-D          35    the same for D, the char LSTM 256 (batch 32, T 100, V 65)
char-train      150    the quick start's model (``rnnlab train``: char LSTM 256 on this
                       Python's stdlib source) with ``--device gpu --max-time 120``
char-eval-cpu    35    its ``last.safetensors`` loaded on the CPU (``rnnlab eval --device
                       cpu --split valid``, the trainer's batching): the loss must equal the
                       one the trainer measured on the GPU (relative difference <= 1e-3)
char-gen-cpu     20    ``rnnlab generate --device cpu``: a sample from that checkpoint
ptb              85    the book's BetterRnnlm recipe (2 x LSTM 650, dropout 0.5, tied
                       weights, SGD lr 20, clip 0.25, batch 20, T 35, the book's
                       initialisation, lr / 4 on a plateau) with ``--max-time 60``: the
                       training loss must fall; tokens/s
=============  ======  =================================================================

Each part is a subprocess killed at its budget (SIGTERM to its process group, SIGKILL
5 s later; ``rnnlab train`` saves ``last.safetensors`` on SIGTERM) and is then marked
``cut``. ``--budget-scale F`` multiplies every budget, the training times and the
deadline (e.g. 0.5 for a quick second try); ``--only tests,ptb`` runs some parts.

Hangs in the tests: pytest-timeout is not on the GPU machine. The tests run in a
subprocess with this file as a pytest plugin (``-p gpu_check``), which arms
``faulthandler.dump_traceback_later(45 s, exit=True)`` when each test starts and cancels
it when the test ends: a test that hangs (in Python or in a CUDA call) gets its traceback
written (``logs/tests-N.jsonl.traceback.txt`` in the archive) and the process ends. The
plugin logs each test's start and outcome as it happens (JSON lines), so the harness knows
which test hung, marks it ``timeout`` (``crashed`` when the process died another way) and
starts pytest again on the tests not yet run, until all have run or the part's budget is
spent. The plugin also imports CuPy before the tests and records the warnings of that
import in the summary: under the suite's ``filterwarnings = error`` such a warning would
otherwise fail whichever test imports CuPy first. Any other warning still fails its test.

Data: PTB is read from ``--data DIR`` or ``$RNNLAB_DATA`` (``ptb/ptb.*.txt`` or
``ptb.*.txt``) only when the three files are there; otherwise the ptb part trains on a
synthetic word corpus written by this script (600,000 words of a Markov chain over
12,000 words, the vocabulary capped at 10,000 as PTB's; the summary says so). Nothing
is ever downloaded: rnnlab's loaders import pooch only to download, which is never
reached (rnnlab imports without pooch).

The script runs rnnlab from this source tree (it puts ``src`` on ``PYTHONPATH`` of every
subprocess) and imports nothing outside the standard library itself. Run folders and the
synthetic corpus go to a temporary work folder (``--work``); ``--out`` receives the
summary (``gpu_check_summary.md`` and ``.json``) and ``gpu_check_logs.tar.gz`` (each
subprocess's output, the pytest events, the training metrics), all three written again
after every part, so a killed run still leaves them; nothing else (the device tool brings
back at most 8 files).

``--dry-run`` runs every part on the CPU against the fake CuPy module of the tests
(``tests/gpu/fakegpu.py``; the subprocesses start through this file, which installs it as
``cupy``, with PyTorch's CUDA calls sent to the CPU for the benchmark), with tiny sizes and
budgets: four gpu-marked tests (one of them made to hang on purpose, to check that a hang
is cut and the run goes on), configuration D for one step, a few training steps. It
checks the harness, not the GPU; ``tests/gpu/test_gpu_check_dryrun.py`` runs it.

Exit status: 0 when no part failed (``cut`` is not a failure), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
TESTS = ROOT / "tests"
BENCH = ROOT / "benchmarks"

#: Budgets in seconds at --budget-scale 1 (the sum is 470) and the whole run's deadline.
BUDGETS = {"env": 20, "tests": 85, "bench-C": 40, "bench-D": 35, "char-train": 150,
           "char-eval-cpu": 35, "char-gen-cpu": 20, "ptb": 85}
DEADLINE = 470
#: The same for --dry-run (generous: a shared CPU; each part takes a few seconds).
DRY_BUDGETS = {"env": 30, "tests": 60, "bench-D": 60, "char-train": 60, "char-eval-cpu": 40,
               "char-gen-cpu": 30, "ptb": 60}
DRY_DEADLINE = 300
TRAIN_SECONDS = {"char": 120, "ptb": 60}
TEST_TIMEOUT = 45  # seconds per test (scaled)
DRY_TEST_TIMEOUT = 4
GRACE = 5  # seconds between SIGTERM and SIGKILL
PART_GROUPS = {"env": ["env"], "tests": ["tests"], "bench": ["bench-C", "bench-D"],
               "char": ["char-train", "char-eval-cpu", "char-gen-cpu"], "ptb": ["ptb"]}
MATCH_RTOL = 1e-3  # the checkpoint's loss on the CPU against the trainer's on the GPU
#: OUT holds three files (the device tool brings back at most 8): the summary as markdown
#: and JSON, and this archive of the logs, the pytest events and the training metrics.
LOGS_TAR = "gpu_check_logs.tar.gz"


# ============================================================ the pytest plugin side
# Loaded by the tests part as ``-p gpu_check``; inactive unless GPU_CHECK_LOG is set.
_PLUGIN: dict[str, Any] = {}


def _plugin_event(**record: Any) -> None:
    log = _PLUGIN.get("log")
    if log is not None:
        log.write(json.dumps(record) + "\n")
        log.flush()


def pytest_configure(config: Any) -> None:
    path = os.environ.get("GPU_CHECK_LOG")
    if not path:
        return
    import faulthandler

    _PLUGIN["log"] = open(path, "a", encoding="utf-8")
    _PLUGIN["traceback"] = open(path + ".traceback.txt", "a", encoding="utf-8")
    _PLUGIN["timeout"] = float(os.environ.get("GPU_CHECK_TEST_TIMEOUT", "60"))
    _PLUGIN["faulthandler"] = faulthandler
    # CuPy imported here, its warnings recorded: under the suite's filterwarnings=error a
    # warning at its first import (e.g. about CUDA_PATH) would otherwise fail whichever test
    # imports it first, and the one GPU run would learn nothing about the kernels
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            _plugin_event(cupy_error=f"{type(exc).__name__}: {exc}")
    if caught:
        _plugin_event(import_warnings=sorted({f"{w.category.__name__}: {w.message}"
                                              for w in caught}))


def pytest_collection_finish(session: Any) -> None:
    if _PLUGIN:
        _plugin_event(collected=[item.nodeid for item in session.items])


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if not _PLUGIN:
        return
    _plugin_event(start=nodeid, t=time.time())
    _PLUGIN["faulthandler"].dump_traceback_later(_PLUGIN["timeout"], exit=True,
                                                 file=_PLUGIN["traceback"])
    hang = os.environ.get("GPU_CHECK_SELFTEST_HANG")
    if hang and hang == nodeid:  # --dry-run: check that a hanging test is cut
        print(f"gpu_check: self-test: {nodeid} hangs on purpose", file=sys.stderr, flush=True)
        time.sleep(3600)


def pytest_runtest_logreport(report: Any) -> None:
    if not _PLUGIN:
        return
    text = ""
    if report.outcome != "passed":
        text = report.longreprtext[-3000:] if hasattr(report, "longreprtext") else ""
    _plugin_event(report=report.nodeid, when=report.when, outcome=report.outcome,
                  duration=round(report.duration, 3), text=text)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    if not _PLUGIN:
        return
    _PLUGIN["faulthandler"].cancel_dump_traceback_later()
    _plugin_event(finish=nodeid, t=time.time())


# ================================================== the fake GPU (--dry-run children)
def _install_fake_gpu(torch_to_cpu: bool) -> None:
    """``import cupy`` gives tests/gpu/fakegpu.py's module, with the bits of ``cupy.cuda``
    that rnnlab's backend and the benchmark call; with ``torch_to_cpu``, PyTorch's
    ``.to("cuda")`` stays on the CPU and ``torch.cuda.synchronize`` does nothing."""
    import types

    sys.path.insert(0, str(TESTS))
    from gpu.fakegpu import cupy_fake  # the name tests/gpu/conftest.py imports it by

    class Device:
        def __init__(self, index: int = 0) -> None:
            self.id = index

        def synchronize(self) -> None:
            return None

    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda index: {"name": b"fake CuPy device (tests/gpu/fakegpu.py)",
                                           "totalGlobalMem": 0},
        runtimeGetVersion=lambda: 0, driverGetVersion=lambda: 0)
    cupy_fake.cuda = types.SimpleNamespace(runtime=runtime, Device=Device)
    cupy_fake.__version__ = "fake"
    sys.modules["cupy"] = cupy_fake
    if not torch_to_cpu:
        return
    import torch

    def cpu(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("cuda"):
            return "cpu"
        if isinstance(value, torch.device) and value.type == "cuda":
            return torch.device("cpu")
        return value

    module_to, tensor_to = torch.nn.Module.to, torch.Tensor.to

    def to_module(self: Any, *args: Any, **kwargs: Any) -> Any:
        return module_to(self, *map(cpu, args), **{k: cpu(v) for k, v in kwargs.items()})

    def to_tensor(self: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor_to(self, *map(cpu, args), **{k: cpu(v) for k, v in kwargs.items()})

    torch.nn.Module.to = to_module
    torch.Tensor.to = to_tensor
    torch.cuda.synchronize = lambda *args, **kwargs: None


def _fake_exec(argv: list[str]) -> int:
    """``--fake-exec (-m MODULE | -c CODE | --bench PATH) ARGS...`` with the fake GPU."""
    import runpy

    kind, target, rest = argv[0], argv[1], argv[2:]
    _install_fake_gpu(torch_to_cpu=kind == "--bench")
    if kind == "-m":
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
        return 0
    if kind == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<gpu_check -c>", "exec"), {"__name__": "__main__"})
        return 0
    import importlib.util

    sys.argv = [target, *rest]
    spec = importlib.util.spec_from_file_location("gpu_check_bench", target)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    module.sgemm_gflops = lambda: 1.0  # the CPU's sgemm rate: not what a dry run checks
    return int(module.main())


# ================================================================== the harness
@dataclass
class Row:
    part: str
    status: str  # ok, FAIL, cut, skipped, not run
    seconds: float
    budget: float
    result: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ran:
    rc: int | None
    seconds: float
    cut: bool
    stdout: str
    stderr_tail: str


class Check:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dry = args.dry_run
        self.scale = args.budget_scale
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu_check-"))
        self.logs = self.work / "logs"  # packed into OUT/gpu_check_logs.tar.gz
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.deadline = self.started + (DRY_DEADLINE if self.dry else DEADLINE) * self.scale
        self.rows: list[Row] = []
        self.env_info: dict[str, Any] = {}
        self.child: subprocess.Popen | None = None
        paths = [str(SRC), str(BENCH), os.environ.get("PYTHONPATH", "")]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
                    "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        for var in ("RNNLAB_DEVICE", "GPU_CHECK_LOG", "GPU_CHECK_SELFTEST_HANG"):
            self.env.pop(var, None)

    # ------------------------------------------------------------------ plumbing
    def budget(self, part: str) -> float:
        table = DRY_BUDGETS if self.dry else BUDGETS
        return table[part] * self.scale

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def gpu_cmd(self, kind: str, target: str, *args: str) -> list[str]:
        """A command that runs on the GPU: plain, or through the fake one in a dry run."""
        if self.dry:
            return [sys.executable, str(Path(__file__).resolve()), "--fake-exec", kind,
                    target, *args]
        if kind == "--bench":
            return [sys.executable, target, *args]
        return [sys.executable, kind, target, *args]

    def cpu_cmd(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def run(self, name: str, cmd: list[str], limit: float, env: dict[str, str] | None = None
            ) -> Ran:
        """``cmd`` with its output in logs/NAME.{out,err}.txt, stopped at ``limit`` seconds
        (SIGTERM to its process group, SIGKILL ``GRACE`` seconds later)."""
        out_path, err_path = self.logs / f"{name}.out.txt", self.logs / f"{name}.err.txt"
        t0 = time.monotonic()
        cut = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            err.write(f"$ {shlex.join(cmd)}\n# limit {limit:.0f} s\n".encode())
            err.flush()
            self.child = subprocess.Popen(cmd, cwd=ROOT, env=env or self.env, stdout=out,
                                          stderr=err, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
            try:
                rc = self.child.wait(timeout=max(limit, 0.1))
            except subprocess.TimeoutExpired:
                cut = True
                rc = self.stop_child()
            finally:
                if self.child is not None and self.child.poll() is None:
                    self.stop_child()
                self.child = None
        stdout = out_path.read_text(encoding="utf-8", errors="replace")
        stderr = err_path.read_text(encoding="utf-8", errors="replace")
        return Ran(rc, time.monotonic() - t0, cut, stdout, stderr[-4000:])

    def stop_child(self) -> int | None:
        proc = self.child
        if proc is None:
            return None
        for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                return proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return proc.poll()

    def limit(self, part: str) -> float:
        return min(self.budget(part), self.left() - GRACE)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"[gpu_check] {row.part}: {row.status} in {row.seconds:.0f} s "
              f"(budget {row.budget:.0f} s): {row.result}", flush=True)
        self.write_summary()

    def no_time(self, part: str) -> bool:
        if self.left() - GRACE >= 3:
            return False
        self.add(Row(part, "not run", 0, self.budget(part), "no time left before the deadline"))
        return True

    # --------------------------------------------------------------------- env
    def part_env(self) -> None:
        part = "env"
        if self.no_time(part):
            return
        ran = self.run(part, self.gpu_cmd("-c", ENV_CODE), self.limit(part))
        info: dict[str, Any] = {}
        with contextlib.suppress(ValueError, IndexError):
            info = json.loads(ran.stdout.strip().splitlines()[-1])
        self.env_info = info
        problems = [k for k in ("cupy_error", "smoke_error", "torch_error") if k in info]
        if not self.dry and not info.get("torch_cuda"):
            problems.append("torch sees no CUDA device")
        if not info.get("rnnlab_gpu_available"):
            problems.append("rnnlab.backend.gpu_available() is False")
        status = "cut" if ran.cut else "ok" if info and ran.rc == 0 and not problems else "FAIL"
        device = info.get("gpu", "?")
        result = (f"{device}, {info.get('gpu_memory_gib', '?')} GiB; CuPy {info.get('cupy')} "
                  f"(CUDA runtime {info.get('cuda_runtime')}, driver {info.get('cuda_driver')})"
                  f"; torch {info.get('torch')} cuDNN {info.get('cudnn')}")
        if problems:
            result += "; " + "; ".join(f"{p}: {info.get(p, '')}".rstrip(": ") for p in problems)
        if not info:
            result = f"no report: {why(ran)}"
        self.add(Row(part, status, ran.seconds, self.budget(part), result, info))

    # ------------------------------------------------------------------- tests
    def part_tests(self) -> None:
        part = "tests"
        if self.no_time(part):
            return
        t0 = time.monotonic()
        end = t0 + self.limit(part)
        per_test = (DRY_TEST_TIMEOUT if self.dry else TEST_TIMEOUT) * self.scale
        common = ["-m", "gpu", "-q", "-p", "gpu_check", "-p", "no:cacheprovider",
                  "--tb=short", "-o", "faulthandler_timeout=0"]
        selection = ["tests/gpu"] + (["-k", "not gradient_check"] if self.dry else [])
        outcome: dict[str, dict[str, Any]] = {}
        hang_id: str | None = None
        cut, runs, note = False, 0, ""
        collected, startup = self.collect(common + selection,
                                          min(60.0, end - time.monotonic()))
        if collected is None:
            note = "collection failed (see logs/tests-collect.*.txt)"
            collected = []
        elif self.dry and len(collected) > 4:  # four tests, the second made to hang
            collected = [collected[round(i * (len(collected) - 1) / 3)] for i in range(4)]
            hang_id = collected[1]
        while pending := [n for n in collected if n not in outcome]:
            remaining = end - time.monotonic()
            if remaining < 3:
                cut = True
                break
            runs += 1
            log = self.logs / f"tests-{runs}.jsonl"
            env = {**self.env, "GPU_CHECK_LOG": str(log),
                   "GPU_CHECK_TEST_TIMEOUT": f"{per_test:g}"}
            if hang_id is not None:
                env["GPU_CHECK_SELFTEST_HANG"] = hang_id
            ran = self.run(f"tests-{runs}", self.pytest_cmd(*common, *pending), remaining, env)
            events = read_jsonl(log)
            merge_test_events(events, outcome)
            started = [e["start"] for e in events if "start" in e]
            finished = {e["finish"] for e in events if "finish" in e}
            open_ids = [n for n in started if n not in finished]
            if open_ids:  # the test that was running when the process ended
                nodeid = open_ids[-1]
                if ran.cut:
                    outcome[nodeid] = {"outcome": "cut", "text": "the part's budget ran out"}
                    cut = True
                    break
                trace = Path(f"{log}.traceback.txt")
                text = trace.read_text(errors="replace") if trace.exists() else ""
                kind = "timeout" if "Timeout (" in text else "crashed"
                outcome[nodeid] = {"outcome": kind, "duration": None,
                                   "text": f"rc {ran.rc}\n{text[-3000:] or ran.stderr_tail}"}
                continue
            if ran.cut:
                cut = True
                break
            missing = [n for n in pending if n not in outcome]
            if missing and not started:
                note = (f"pytest ran no test (rc {ran.rc}): "
                        f"{error_line(ran.stdout + ran.stderr_tail)}")
                break
            for nodeid in missing:
                outcome[nodeid] = {"outcome": "not run", "text": "pytest did not run it"}
        row = self.tests_row(t0, collected, outcome, cut, note, hang_id, runs)
        row.details.update(startup)
        if startup.get("import_warnings"):
            row.result += "\n    warnings at CuPy's import (recorded, not errors): " + \
                "; ".join(startup["import_warnings"])[:500]
        self.add(row)

    def pytest_cmd(self, *args: str) -> list[str]:
        if self.dry:
            return self.gpu_cmd("-m", "pytest", *args)
        return [sys.executable, "-m", "pytest", *args]

    def collect(self, args: list[str], limit: float
                ) -> tuple[list[str] | None, dict[str, Any]]:
        """The node ids pytest selects (the plugin logs them) or None, and what the plugin
        saw of CuPy's import (``import_warnings``, ``cupy_error``)."""
        log = self.logs / "tests-collect.jsonl"
        log.unlink(missing_ok=True)
        env = {**self.env, "GPU_CHECK_LOG": str(log), "GPU_CHECK_TEST_TIMEOUT": "60"}
        self.run("tests-collect", self.pytest_cmd(*args, "--collect-only"), limit, env)
        events = read_jsonl(log)
        startup = {k: e[k] for e in events for k in ("import_warnings", "cupy_error") if k in e}
        return next((e["collected"] for e in events if "collected" in e), None), startup

    def tests_row(self, t0: float, collected: list[str], outcome: dict[str, dict[str, Any]],
                  cut: bool, note: str, hang_id: str | None, runs: int) -> Row:
        counts: dict[str, int] = {}
        for nodeid in collected:
            kind = outcome.get(nodeid, {}).get("outcome", "not run")
            counts[kind] = counts.get(kind, 0) + 1
        bad = {n: o for n, o in outcome.items()
               if o["outcome"] in ("failed", "error", "timeout", "crashed")}
        expected_hang = self.dry and hang_id is not None and \
            outcome.get(hang_id, {}).get("outcome") == "timeout"
        if expected_hang:
            bad.pop(hang_id, None)
        if note or bad:
            status = "FAIL"
        elif cut or counts.get("not run"):
            status = "cut"
        elif collected and counts.get("skipped", 0) == len(collected):
            status = "skipped"
        else:
            status = "ok"
        result = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no tests"
        result += f" of {len(collected)} ({runs} pytest run{'s' * (runs != 1)})"
        if expected_hang:
            result += f"; self-test: the hang in {hang_id.split('::')[-1]} was cut"
        if note:
            result += f"; {note}"
        for nodeid, o in list(bad.items())[:8]:
            result += f"\n    {o['outcome']}: {nodeid}: {error_line(o.get('text', ''))}"
        if len(bad) > 8:
            result += f"\n    ... and {len(bad) - 8} more (see the JSON)"
        details = {"counts": counts, "tests": outcome, "runs": runs,
                   "per_test_timeout_s": (DRY_TEST_TIMEOUT if self.dry else TEST_TIMEOUT)
                   * self.scale, "selftest_hang": hang_id}
        return Row("tests", status, time.monotonic() - t0, self.budget("tests"), result, details)

    # ------------------------------------------------------------------- bench
    def part_bench(self, config: str) -> None:
        part = f"bench-{config}"
        if self.dry and config != "D":
            return
        if self.no_time(part):
            return
        steps, warmup = ("1", "0") if self.dry else ("20", "3")
        args = ["--device", "gpu", "--configs", config, "--steps", steps, "--warmup", warmup,
                "--no-memory", "--pause", "0" if self.dry else "0.05", "--threads",
                "1" if self.dry else "4"]
        ran = self.run(part, self.gpu_cmd("--bench", str(BENCH / "bench_vs_torch.py"), *args),
                       self.limit(part))
        row = parse_bench_row(ran.stdout, config)
        tokens = {"C": 20 * 35, "D": 32 * 100}[config]
        header = next((ln for ln in ran.stdout.splitlines() if ln.startswith("rnnlab vs")), "")
        if row is None:
            status = "cut" if ran.cut else "FAIL"
            result = f"no result: {why(ran)}"
            details: dict[str, Any] = {"rc": ran.rc}
        else:
            ours, theirs, ratio = row
            met = ratio >= 0.5
            status = "ok"
            torch_name = "torch (CPU)" if self.dry else "torch cuDNN"
            result = (f"rnnlab {ours:,.0f} tok/s ({tokens / ours * 1e3:.1f} ms/step), "
                      f"{torch_name} {theirs:,.0f} tok/s ({tokens / theirs * 1e3:.1f} ms/step): "
                      f"{ratio:.2f}x (target >= 0.5x: {'met' if met else 'missed'})")
            details = {"rnnlab_tok_s": ours, "torch_tok_s": theirs, "ratio": ratio,
                       "rnnlab_ms_step": tokens / ours * 1e3,
                       "torch_ms_step": tokens / theirs * 1e3, "target_met": met,
                       "steps": int(steps), "header": header}
        self.add(Row(part, status, ran.seconds, self.budget(part), result, details))

    # -------------------------------------------------------------------- char
    def part_char(self) -> None:
        if self.no_time("char-train"):
            return
        run_dir = self.work / "char"
        shutil.rmtree(run_dir, ignore_errors=True)
        args = ["train", "--device", "gpu", "--out", str(run_dir), "--no-progress", "--seed",
                "0"]
        bptt = 64  # TrainConfig's default, which the quick start uses
        if self.dry:
            bptt = 16
            args += ["--max-chars", "30000", "--embedding-dim", "16", "--hidden-size", "32",
                     "--batch-size", "4", "--bptt", str(bptt), "--max-steps", "6",
                     "--log-every", "2", "--sample-length", "40"]
        else:
            args += ["--max-time", f"{TRAIN_SECONDS['char'] * self.scale:g}",
                     "--sample-length", "300"]
        corpus = "this Python's stdlib source (the quick start's corpus)"
        if stdlib_chars() < 1_000_000:  # a slim image without the .py files
            text = self.work / "char-corpus.txt"  # a file: a checkpoint names it for eval
            with open(text, "w", encoding="utf-8") as fh:
                for path in sorted(SRC.rglob("*.py")):
                    fh.write(path.read_text(encoding="utf-8", errors="replace"))
            args += ["--corpus", str(text), "--level", "char"]
            corpus = "rnnlab's own .py files (this Python has no stdlib source)"
        ran = self.run("char-train", self.gpu_cmd("-m", "rnnlab", *args), self.limit("char-train"))
        metrics = read_jsonl(run_dir / "metrics.jsonl")
        copy_if(run_dir / "metrics.jsonl", self.logs / "char-metrics.jsonl")
        stats = train_stats(metrics)
        stats["corpus"] = corpus
        ckpt = run_dir / "last.safetensors"
        gpu_sample = ran.stdout.partition("--- sample ---")[2].strip()
        stats["gpu_sample"] = gpu_sample[:400]
        if ran.rc == 0 and ckpt.exists():
            status = "ok"
        elif ran.cut and ckpt.exists():
            status = "cut"
        else:
            status = "FAIL"
        result = describe_training(stats) + f"; corpus: {corpus}"
        if status != "ok":
            result = f"{why(ran)}; {result}"
        self.add(Row("char-train", status, ran.seconds, self.budget("char-train"), result,
                     stats))
        if not ckpt.exists():
            for part in ("char-eval-cpu", "char-gen-cpu"):
                self.add(Row(part, "not run", 0, self.budget(part), "no checkpoint"))
            return
        self.part_char_eval(ckpt, stats, bptt)
        self.part_char_generate(ckpt)

    def part_char_eval(self, ckpt: Path, stats: dict[str, Any], bptt: int) -> None:
        part = "char-eval-cpu"
        if self.no_time(part):
            return
        cmd = self.cpu_cmd("rnnlab", "eval", str(ckpt), "--device", "cpu", "--split", "valid",
                           "--batch-size", "10", "--bptt", str(bptt))
        ran = self.run(part, cmd, self.limit(part))
        try:
            cpu_loss = float(json.loads(ran.stdout)["valid"]["loss"])
        except (ValueError, KeyError, TypeError):
            status = "cut" if ran.cut else "FAIL"
            self.add(Row(part, status, ran.seconds, self.budget(part),
                         f"no result: {why(ran)}"))
            return
        gpu_loss = stats.get("final_valid_loss") if stats.get("stop") in (
            "max_time", "max_steps") else None
        details: dict[str, Any] = {"cpu_valid_loss": cpu_loss, "gpu_valid_loss": gpu_loss}
        result = f"loaded on the CPU: valid loss {cpu_loss:.4f} (ppl {math.exp(cpu_loss):.2f})"
        status = "ok"
        if gpu_loss is not None:
            diff = abs(cpu_loss - gpu_loss) / max(abs(gpu_loss), 1e-12)
            details["relative_difference"] = diff
            same = diff <= MATCH_RTOL
            result += (f"; the trainer's on the GPU {gpu_loss:.4f}: relative difference "
                       f"{diff:.1e} ({'match' if same else 'MISMATCH'})")
            status = "ok" if same else "FAIL"
        else:
            result += "; no final GPU valid loss to compare (the run did not stop on its limit)"
        self.add(Row(part, status, ran.seconds, self.budget(part), result, details))

    def part_char_generate(self, ckpt: Path) -> None:
        part = "char-gen-cpu"
        if self.no_time(part):
            return
        cmd = self.cpu_cmd("rnnlab", "generate", str(ckpt), "--device", "cpu", "--prime",
                           "def ", "--length", "40" if self.dry else "300", "--seed", "0",
                           "--temperature", "0.8")
        ran = self.run(part, cmd, self.limit(part))
        text = ran.stdout.rstrip("\n")
        ok = ran.rc == 0 and len(text) > len("def ")
        status = "ok" if ok else "cut" if ran.cut else "FAIL"
        result = f"{len(text)} characters (sample below)" if ok else why(ran)
        self.add(Row(part, status, ran.seconds, self.budget(part), result, {"sample": text}))

    # --------------------------------------------------------------------- ptb
    def part_ptb(self) -> None:
        part = "ptb"
        if self.no_time(part):
            return
        limit, t0 = self.limit(part), time.monotonic()
        ptb_dir = find_ptb(self.args.data)
        if ptb_dir is not None and not self.dry:
            data_args = ["--corpus", "ptb", "--data-dir", str(ptb_dir)]
            source = f"PTB from {ptb_dir}"
        else:
            words, vocab = (6000, 300) if self.dry else (600_000, 12_000)
            path = self.work / "synthetic-words.txt"
            write_synthetic_corpus(path, words, vocab)
            data_args = ["--corpus", str(path), "--level", "word", "--max-size", "10000"]
            source = (f"SYNTHETIC word corpus ({words:,} words over {vocab:,}, a Markov "
                      f"chain with 4 successors per word): "
                      + ("--dry-run" if self.dry else "no PTB in --data or $RNNLAB_DATA"))
        run_dir = self.work / "ptb"
        shutil.rmtree(run_dir, ignore_errors=True)
        size = "16" if self.dry else "650"
        args = ["train", *data_args, "--device", "gpu", "--out", str(run_dir),
                "--embedding-dim", size, "--hidden-size", size, "--num-layers", "2",
                "--dropout", "0.5", "--tie-weights", "--init", "book", "--optimizer", "sgd",
                "--lr", "20", "--clip-norm", "0.25", "--schedule", "plateau", "--lr-decay",
                "0.25", "--epochs", "40", "--no-progress", "--sample-length", "0", "--seed", "0"]
        if self.dry:
            args += ["--batch-size", "4", "--bptt", "8", "--max-steps", "12", "--log-every",
                     "3"]
        else:
            args += ["--batch-size", "20", "--bptt", "35", "--log-every", "20",
                     "--max-time", f"{TRAIN_SECONDS['ptb'] * self.scale:g}"]
        ran = self.run(part, self.gpu_cmd("-m", "rnnlab", *args),
                       limit - (time.monotonic() - t0))
        metrics = read_jsonl(run_dir / "metrics.jsonl")
        copy_if(run_dir / "metrics.jsonl", self.logs / "ptb-metrics.jsonl")
        stats = train_stats(metrics)
        stats["data"] = source
        falling = stats.get("loss_falling")
        if ran.rc == 0 and falling:
            status = "ok"
        elif ran.cut and falling:
            status = "cut"
        else:
            status = "FAIL"
        result = f"{source}; " + describe_training(stats)
        if ran.rc != 0:
            result = f"{why(ran)}; {result}"
        self.add(Row(part, status, time.monotonic() - t0, self.budget(part), result, stats))

    # ----------------------------------------------------------------- summary
    def write_summary(self) -> None:
        info = self.env_info
        head = {"dry_run": self.dry, "budget_scale": self.scale,
                "device": info.get("gpu"), "elapsed_s": round(time.monotonic() - self.started, 1),
                "deadline_s": (DRY_DEADLINE if self.dry else DEADLINE) * self.scale,
                "env": info, "rows": [asdict(r) for r in self.rows]}
        tmp = self.out / "gpu_check_summary.json.tmp"
        tmp.write_text(json.dumps(head, indent=2, default=str), encoding="utf-8")
        tmp.replace(self.out / "gpu_check_summary.json")
        (self.out / "gpu_check_summary.md").write_text(self.markdown(head), encoding="utf-8")
        pack_logs(self.logs, self.out / LOGS_TAR)

    def markdown(self, head: dict[str, Any]) -> str:
        title = "rnnlab GPU check" + (" (DRY RUN on the fake CuPy module: no GPU figures)"
                                      if self.dry else "")
        lines = [f"# {title}", "",
                 f"device: {head['device'] or '?'}; elapsed {head['elapsed_s']:.0f} s of a "
                 f"{head['deadline_s']:.0f} s deadline; budget scale {self.scale:g}", "",
                 "| part | status | s | budget | result |", "|---|---|---:|---:|---|"]
        for r in self.rows:
            cell = r.result.replace("|", "\\|").replace("\n", "<br>")
            lines.append(f"| {r.part} | {r.status} | {r.seconds:.0f} | {r.budget:.0f} | {cell} |")
        for r in self.rows:
            for key, label in (("gpu_sample", "sampled on the GPU at the end of training"),
                               ("sample", "generated on the CPU from the GPU checkpoint")):
                if r.details.get(key):
                    lines += ["", f"{r.part}, {label}:", "", "```", r.details[key], "```"]
        return "\n".join(lines) + "\n"

    def table(self) -> str:
        width = max((len(r.part) for r in self.rows), default=4)
        out = [f"{'part':<{width}}  {'status':<8}{'s':>5}{'budget':>8}  result"]
        for r in self.rows:
            first, *more = r.result.split("\n")
            out.append(f"{r.part:<{width}}  {r.status:<8}{r.seconds:>5.0f}{r.budget:>8.0f}  "
                       f"{first}")
            out += [f"{'':<{width + 23}}{m.strip()}" for m in more]
        return "\n".join(out)


ENV_CODE = r"""
import json, os, platform, sys
info = {"python": sys.version.split()[0], "platform": platform.platform(),
        "executable": sys.executable}
import numpy
info["numpy"] = numpy.__version__
import rnnlab
info["rnnlab"] = f"{rnnlab.__version__} from {os.path.dirname(rnnlab.__file__)}"
for name in ("pooch", "numba", "safetensors", "tqdm", "threadpoolctl"):
    try:
        info[name] = getattr(__import__(name), "__version__", "present")
    except ImportError:
        info[name] = "missing"
try:
    import cupy
    info["cupy"] = getattr(cupy, "__version__", "?")
    rt = cupy.cuda.runtime
    info["cuda_devices"] = rt.getDeviceCount()
    props = rt.getDeviceProperties(0)
    name = props["name"]
    info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
    info["gpu_memory_gib"] = round(props["totalGlobalMem"] / 2**30, 1)
    info["cuda_runtime"] = rt.runtimeGetVersion()
    info["cuda_driver"] = rt.driverGetVersion()
except Exception as exc:
    info["cupy_error"] = f"{type(exc).__name__}: {exc}"
try:
    from rnnlab import backend
    info["rnnlab_gpu_available"] = backend.gpu_available()
    xp = backend.get_xp("gpu")
    a = xp.arange(12, dtype=xp.float32).reshape(3, 4)
    info["smoke"] = float((a @ a.T).sum())  # the column sums squared: 1134
    if info["smoke"] != 1134.0:
        info["smoke_error"] = f"expected 1134.0, got {info['smoke']}"
except Exception as exc:
    info["smoke_error"] = f"{type(exc).__name__}: {exc}"
try:
    import torch
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.cuda.is_available()
    if info["torch_cuda"]:
        info["torch_gpu"] = torch.cuda.get_device_name(0)
        info["cudnn"] = torch.backends.cudnn.version()
except Exception as exc:
    info["torch_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(info))
"""


# ================================================================== helpers
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (a torn or bad line is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                records.append(value)
    return records


def merge_test_events(events: list[dict[str, Any]], outcome: dict[str, dict[str, Any]]) -> None:
    """Each finished test's outcome: failed (call) / error (setup, teardown) / skipped /
    passed, from the plugin's report events."""
    reports: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if "report" in e:
            reports.setdefault(e["report"], []).append(e)
    finished = {e["finish"] for e in events if "finish" in e}
    for nodeid, phases in reports.items():
        if nodeid not in finished:
            continue
        kind, text = "passed", ""
        for p in phases:
            if p["outcome"] == "failed":
                kind, text = ("failed" if p["when"] == "call" else "error"), p.get("text", "")
                break
            if p["outcome"] == "skipped":
                kind, text = "skipped", p.get("text", "")
        duration = sum(p.get("duration") or 0 for p in phases)
        outcome[nodeid] = {"outcome": kind, "duration": round(duration, 3), "text": text}


def parse_bench_row(stdout: str, config: str) -> tuple[float, float, float] | None:
    """(rnnlab tok/s, torch tok/s, ratio) from bench_vs_torch.py's row for ``config``."""
    pattern = re.compile(rf"^{config}\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)x")
    for line in stdout.splitlines():
        m = pattern.match(line)
        if m:
            ours, theirs = (float(g.replace(",", "")) for g in m.groups()[:2])
            if ours > 0 and theirs > 0:
                return ours, theirs, ours / theirs
    return None


def train_stats(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Steps, loss of the first and last logged windows, median tokens/s (the first
    window, which holds the kernels' compilation, left out), the final valid loss."""
    train = [m for m in metrics if m.get("event") == "train" and isinstance(m.get("loss"),
                                                                             int | float)]
    valid = [m for m in metrics if m.get("event") == "valid"]
    stop = next((m.get("reason") for m in reversed(metrics) if m.get("event") == "stop"), None)
    stats: dict[str, Any] = {"windows": len(train), "stop": stop,
                             "divergences": sum(m.get("event") == "divergence" for m in metrics)}
    if train:
        rates = [m["tokens_per_s"] for m in train if isinstance(m.get("tokens_per_s"),
                                                                int | float)]
        steady = rates[1:] or rates
        stats.update(steps=train[-1].get("step"), first_loss=train[0]["loss"],
                     last_loss=train[-1]["loss"],
                     loss_falling=len(train) > 1 and train[-1]["loss"] < train[0]["loss"],
                     tokens_per_s=statistics.median(steady) if steady else None,
                     losses=[round(m["loss"], 4) for m in train])
    if valid and isinstance(valid[-1].get("loss"), int | float):
        stats["final_valid_loss"] = valid[-1]["loss"]
    return stats


def describe_training(stats: dict[str, Any]) -> str:
    if not stats.get("windows"):
        return "no training window logged"
    rate = stats.get("tokens_per_s")
    text = (f"{stats['steps']} steps, loss {stats['first_loss']:.3f} -> {stats['last_loss']:.3f}"
            f" ({'falling' if stats['loss_falling'] else 'NOT falling'}), "
            + (f"{rate:,.0f} tok/s" if rate else "? tok/s")
            + f" (median of {stats['windows']} windows)")
    if stats.get("final_valid_loss") is not None:
        loss = stats["final_valid_loss"]
        text += f", valid loss {loss:.3f} (ppl {math.exp(min(loss, 700)):.1f})"
    if stats.get("divergences"):
        text += f", {stats['divergences']} divergence rollback(s)"
    return text + f", stopped by {stats.get('stop')}"


def find_ptb(data: str | None) -> Path | None:
    """The folder holding ptb.{train,valid,test}.txt in --data or $RNNLAB_DATA, or None."""
    bases = [data] if data else []
    bases += [p for p in os.environ.get("RNNLAB_DATA", "").split(os.pathsep) if p]
    for base in bases:
        for folder in (Path(base).expanduser(), Path(base).expanduser() / "ptb"):
            if all((folder / f"ptb.{s}.txt").is_file() for s in ("train", "valid", "test")):
                return folder
    return None


def write_synthetic_corpus(path: Path, words: int, vocab: int, seed: int = 0) -> None:
    """A word corpus with learnable structure: a first-order Markov chain in which each
    word is followed by one of 4 successors (entropy log 4 = 1.39 nats a word, against
    log V for a uniform guess), two drawn with Zipf-like frequencies and two uniformly (so
    that every word occurs, as in PTB's 10,000); a line ends after about 20 words."""
    import random

    rng = random.Random(seed)
    population = range(vocab)
    cum, total = [], 0.0
    for rank in population:
        total += 1 / (rank + 1)
        cum.append(total)
    successors = [rng.choices(population, cum_weights=cum, k=2) + rng.sample(population, 2)
                  for _ in population]
    names = [f"w{i}" for i in range(vocab)]
    lines, line, word = [], [], 0
    for _ in range(words):
        word = successors[word][rng.randrange(4)]
        line.append(names[word])
        if len(line) >= 20 and rng.random() < 0.2:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def why(ran: Ran) -> str:
    """What stopped a subprocess: its budget, or its status and error line."""
    if ran.cut:
        return f"cut at its budget after {ran.seconds:.0f} s"
    return f"rc {ran.rc}: {error_line(ran.stderr_tail)}"


def pack_logs(folder: Path, target: Path, cap: int = 2 << 20) -> None:
    """``folder`` as ``logs/...`` in a gzipped tar at ``target`` (each file's last ``cap``
    bytes), replaced atomically."""
    import io
    import tarfile

    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            data = path.read_bytes()[-cap:]
            info = tarfile.TarInfo(f"logs/{path.relative_to(folder).as_posix()}")
            info.size, info.mtime = len(data), int(path.stat().st_mtime)
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(target)


def stdlib_chars(enough: int = 1_000_000) -> int:
    """Bytes of ``.py`` source in this Python's standard library (counted up to ``enough``)."""
    import sysconfig

    total = 0
    for path in Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"):
        if "site-packages" in path.parts or "dist-packages" in path.parts:
            continue
        with contextlib.suppress(OSError):
            total += path.stat().st_size
        if total >= enough:
            break
    return total


def copy_if(src: Path, dst: Path) -> None:
    if src.exists():
        shutil.copyfile(src, dst)


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def error_line(text: str) -> str:
    """The most telling line of a traceback or pytest report (``E ...`` or the last)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E ")]
    if errors:
        return errors[0][:300]
    for ln in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Mix)\b", ln) or ln.startswith("rnnlab: error"):
            return ln[:300]
    return lines[-1][:300] if lines else ""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the summary, logs and metrics")
    p.add_argument("--budget-scale", type=float, default=1.0,
                   help="multiply every budget, training time and the deadline by this")
    p.add_argument("--data", help="folder holding ptb/ptb.*.txt (else $RNNLAB_DATA, else a "
                   "synthetic word corpus)")
    p.add_argument("--only", help=f"comma-separated parts among {', '.join(PART_GROUPS)}")
    p.add_argument("--work", help="folder for run folders and data (default: a temporary "
                   "folder, removed at the end)")
    p.add_argument("--dry-run", action="store_true",
                   help="on the CPU against tests/gpu/fakegpu.py, tiny sizes and budgets")
    args = p.parse_args(argv)
    if not args.budget_scale > 0:
        p.error("--budget-scale must be positive")
    if args.only:
        unknown = {s.strip() for s in args.only.split(",")} - set(PART_GROUPS)
        if unknown:
            p.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    check = Check(args)
    wanted = {s.strip() for s in args.only.split(",")} if args.only else set(PART_GROUPS)
    steps = [("env", check.part_env), ("tests", check.part_tests),
             ("bench", lambda: check.part_bench("C")), ("bench", lambda: check.part_bench("D")),
             ("char", check.part_char), ("ptb", check.part_ptb)]

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    print(f"[gpu_check] {'DRY RUN (fake CuPy, CPU) ' if check.dry else ''}parts: "
          f"{', '.join(g for g in PART_GROUPS if g in wanted)}; deadline "
          f"{check.left():.0f} s; out {check.out}; work {check.work}", flush=True)
    try:
        for group, fn in steps:
            if group in wanted:
                fn()
    except KeyboardInterrupt:
        check.stop_child()
        check.rows.append(Row("(interrupted)", "cut", 0, 0, "gpu_check was stopped"))
    finally:
        signal.signal(signal.SIGTERM, previous)
        check.write_summary()
        if not args.work:
            shutil.rmtree(check.work, ignore_errors=True)
    print(f"\nrnnlab GPU check{' (DRY RUN: fake CuPy on the CPU)' if check.dry else ''}; "
          f"device: {check.env_info.get('gpu', '?')}; "
          f"{time.monotonic() - check.started:.0f} s")
    print(check.table())
    print(f"summary: {check.out / 'gpu_check_summary.md'} and .json; logs in "
          f"{check.out / LOGS_TAR}")
    return 1 if any(r.status == "FAIL" for r in check.rows) else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--fake-exec":
        sys.exit(_fake_exec(sys.argv[2:]))
    sys.exit(main())
