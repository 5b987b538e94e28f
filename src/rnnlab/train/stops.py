"""When a run stops before its last epoch: a stop signal, or a budget spent.

Ctrl-C (SIGINT), SIGTERM (``kill``, ``timeout``, ``docker stop``, Slurm) and SIGHUP (the
terminal closed) finish the current step; the run saves ``last.safetensors`` and ends with
``stopped`` set to ``"interrupted"``, ``"terminated"`` or ``"hangup"``. The same signal
again aborts at once (:class:`Aborted`, a ``KeyboardInterrupt``). A signal whose handler
is "ignore" when training starts (``nohup``, a background job) stays ignored; handlers are
installed only in the main thread.

The budgets, ``max_steps`` and ``max_time`` (seconds), end the run with ``stopped`` set
to ``"max_steps"`` or ``"max_time"``; such a run ends like a finished one (its final
validation may replace the best model, the test split is evaluated).

On many processes a signal (to any rank) and ``max_time`` (on any rank's clock) are
agreed in the gradient reduction (:meth:`asked`, :meth:`agree`), so that every rank stops
after the same step; ``max_steps`` needs no agreement.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rnnlab.train.config import TrainConfig

#: The signals that stop training with a checkpoint, and the stop reason of each.
STOP_SIGNALS = {"SIGINT": "interrupted", "SIGTERM": "terminated", "SIGHUP": "hangup"}
#: The stops by budget.
BUDGETS = ("max_steps", "max_time")


class Aborted(KeyboardInterrupt):
    """A second stop signal while a stop was under way: training is abandoned at once.

    ``signum`` is the signal (``signal.SIGINT``, ``SIGTERM`` or ``SIGHUP``).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Stops:
    """The stop conditions of one run. ``reason`` is None while the run goes on.

    ``agreed``: the processes agree on stops by signal and time in their gradient
    reduction (many processes); otherwise they are taken before the next step.
    """

    def __init__(self, config: TrainConfig, *, agreed: bool,
                 say: Callable[[str], None]) -> None:
        self.config, self.agreed, self._say = config, agreed, say
        self.reason: str | None = None
        self._pending: str | None = None  # a signal not yet agreed on (many processes)
        self._started = time.perf_counter()

    @property
    def by_budget(self) -> bool:
        return self.reason in BUDGETS

    @property
    def by_signal(self) -> bool:
        return self.reason in STOP_SIGNALS.values()

    def due(self, step: int) -> bool:
        """Whether the run stops before optimizer step ``step + 1``."""
        cfg = self.config
        if self.reason is None:
            if cfg.max_steps is not None and step >= cfg.max_steps:
                self.reason = "max_steps"
            elif not self.agreed and self._time_spent():
                self.reason = "max_time"
        return self.reason is not None

    def asked(self) -> str | None:
        """The stop this process asks the others to agree on (a signal, or its clock)."""
        return self._pending or ("max_time" if self._time_spent() else None)

    def agree(self, reasons: list[str]) -> None:
        """The stops asked for by any process (in :data:`AGREED_STOPS` order)."""
        if reasons and self.reason is None:
            self.reason = reasons[0]

    def _time_spent(self) -> bool:
        limit = self.config.max_time
        return limit is not None and time.perf_counter() - self._started >= limit

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Start the clock, handle SIGINT, SIGTERM and SIGHUP (where they exist and are not
        ignored), and put the earlier handlers back afterwards."""
        self.reason, self._pending, self._started = None, None, time.perf_counter()
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                signum = getattr(signal, name, None)
                if signum is None or signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # not on this system, or ignored on purpose (nohup)
                previous[signum] = signal.signal(signum, self._handler)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _handler(self, signum: int, frame: Any) -> None:
        if self.by_signal or self._pending is not None:
            raise Aborted(signum)  # the second one: no more waiting
        name = signal.Signals(signum).name
        if self.agreed:  # the ranks agree on the stop in the next reduction
            self._pending = STOP_SIGNALS[name]
        else:
            self.reason = STOP_SIGNALS[name]
        what = "Ctrl-C" if signum == signal.SIGINT else name
        self.say(f"{what}: finishing the current step and saving (again to abort)")

    def say(self, message: str) -> None:
        """``echo``, where a closed terminal (after SIGHUP) must not stop the save."""
        try:
            self._say(message)
        except (OSError, ValueError):
            pass
