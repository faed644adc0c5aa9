"""Emulated instruments, served over the protocols the real ones speak."""
