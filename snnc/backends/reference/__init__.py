"""Reference simulator: batched torch, float and (later) bit-exact fixed point."""
