"""Seeded random streams: one generator per named stream, all derived from the bench seed."""

from __future__ import annotations

import zlib

import numpy as np


class SeededStreams:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[str, np.random.Generator] = {}

    def __call__(self, stream: str) -> np.random.Generator:
        gen = self._streams.get(stream)
        if gen is None:
            # The stream name (not creation order) picks the child, so adding a stream elsewhere
            # never changes the draws of an existing one.
            key = zlib.crc32(stream.encode("utf-8"))
            gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(key,))))
            self._streams[stream] = gen
        return gen

    @property
    def streams(self) -> list[str]:
        return sorted(self._streams)
