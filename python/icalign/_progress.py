"""Terminal interaction of a training run: a progress bar and a Ctrl-C that waits
for the end of the current step."""
from __future__ import annotations

import signal
import sys
import threading
import time


class Progress:
    """A tqdm bar when tqdm is importable, else a plain line every ~10 s.

    tqdm is optional (numpy is the only runtime dependency)."""

    def __init__(self, enabled, total: int, initial: int, desc: str):
        self.bar = None
        self.enabled = bool(enabled)
        self.total, self.desc = total, desc
        self.start_step, self.t0, self.last_print = initial, time.monotonic(), 0.0
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm  # a widget in notebooks, a text bar in terminals
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step",
                            dynamic_ncols=True, leave=True)

    def update(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            if step % 5 == 0 or step == self.total:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            return
        now = time.monotonic()
        if now - self.last_print >= 10.0 or step == self.total:
            self.last_print = now
            done = step - self.start_step
            rate = done / max(now - self.t0, 1e-9)
            eta = (self.total - step) / rate if rate > 0 else float("inf")
            print(f"{self.desc}: step {step}/{self.total} loss {loss:.4f} "
                  f"{rate:.2f} steps/s ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class DeferInterrupt:
    """Turns the first Ctrl-C into a flag checked between steps, so a C step is
    never cut off half-way through (its parameters and loss stay consistent);
    a second Ctrl-C interrupts at once. Only possible in the main thread."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, TypeError):  # embedded interpreters may refuse
                self.previous = None
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
