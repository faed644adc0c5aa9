"""argparse value types shared by the stimrig subcommands."""

from __future__ import annotations

import argparse


def positive_workers(text: str) -> int:
    """``--workers N``: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of workers, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 worker, got {value}")
    return value
