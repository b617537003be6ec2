"""One progress bar for every long command: a tqdm bar driven by ``(done, total)`` callbacks."""

from __future__ import annotations

from tqdm import tqdm


class ProgressBar:
    """Callable ``(done, total)`` progress reporter; a context manager that closes the bar.

    Args:
        desc: label of the bar.
        enabled: draw it (``progress: false`` in configs turns bars off).
        unit: what is counted.
        leave: keep the finished bar on screen.
    """

    def __init__(self, desc: str, enabled: bool = True, *, unit: str = "it", leave: bool = True) -> None:
        self.bar = tqdm(desc=desc, unit=unit, disable=not enabled, leave=leave)

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total``."""
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
