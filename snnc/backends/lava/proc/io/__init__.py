"""The ends of a network: the input code source and the readout monitor."""
