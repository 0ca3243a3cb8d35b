"""Integer synapses: convolutions, dense layers, one-to-one scales, aligned sums."""
