"""Pooling gates: rate, first-spike and decoded max-pools, sum-pools."""
