"""A training process to be killed: ``rnnlab`` on the command line, instrumented.

Run as ``python killchild.py PLAN_JSON -- ARGV...``: it runs ``rnnlab.cli.main(ARGV)`` and
logs every checkpoint write to ``plan["events"]`` (``B k name step sha256`` when write
``k`` starts, ``E k`` when it is complete). With ``plan["write"] = k`` and a
``plan["phase"]`` it kills itself with SIGKILL inside write ``k``:

* ``open``: the temporary file is open, nothing written;
* ``write``: ``plan["fraction"]`` of the bytes written (and handed to the kernel);
* ``fsync``: all bytes written and fsync'ed, the rename not done;
* ``replace``: renamed over the target, the folder not fsync'ed yet;
* ``done``: the write has returned.

Nothing in ``rnnlab`` is changed; the module's ``open``, ``os`` and
``atomic_write_bytes`` names are wrapped in this process only.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def main() -> int:
    plan = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    events = open(plan["events"], "a", buffering=1, encoding="utf-8")

    import rnnlab.data.safefiles as sf
    import rnnlab.train.checkpoint as ck

    state = {"n": 0, "armed": False}
    phase = plan.get("phase")

    def die(where: str) -> None:
        events.write(f"K {state['n']} {where}\n")
        events.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    real_atomic = ck.atomic_write_bytes

    def atomic(path: Any, payload: bytes) -> None:
        state["n"] += 1
        k = state["n"]
        n = int.from_bytes(payload[:8], "little")
        meta = json.loads(json.loads(payload[8:8 + n])["__metadata__"]["rnnlab"])
        step = meta.get("progress", {}).get("step")
        events.write(f"B {k} {Path(path).name} {step} {hashlib.sha256(payload).hexdigest()}\n")
        state["armed"] = plan.get("write") == k
        real_atomic(path, payload)
        events.write(f"E {k}\n")
        if state["armed"] and phase == "done":
            die("done")
        state["armed"] = False

    class File:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def write(self, data: bytes) -> int:
            if state["armed"] and phase == "open":
                die("open")
            if state["armed"] and phase == "write":
                cut = int(len(data) * float(plan.get("fraction", 0.5)))
                self.fh.write(data[:cut])
                self.fh.flush()
                die(f"write {cut}/{len(data)}")
            return self.fh.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> File:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.fh.close()

    def opener(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        fh = builtins.open(file, mode, *args, **kw)
        return File(fh) if "w" in mode else fh

    class Os:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def fsync(fd: int) -> None:
            os.fsync(fd)
            if state["armed"] and phase == "fsync":
                die("fsync")

        @staticmethod
        def replace(src: Any, dst: Any) -> None:
            os.replace(src, dst)
            if state["armed"] and phase == "replace":
                die("replace")

    ck.atomic_write_bytes = atomic
    sf.open = opener  # type: ignore[attr-defined]  # the writer the checkpoints go through
    sf.os = Os()  # type: ignore[assignment]

    from rnnlab.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
