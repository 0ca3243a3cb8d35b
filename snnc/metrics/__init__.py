"""What a run costs and how well it agrees: per-layer MACs and the layer table, the metrics of
``simulate --json`` (accuracy, agreement, spikes, synaptic events, energy) and the Loihi energy
model. Below the API, above the IR; the HTML report (``snnc.report``) draws them."""
