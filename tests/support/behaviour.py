"""The behaviour fingerprint of a compile: per-tensor sha256 of the artifact and the metrics of
``simulate --json`` (every key but ``wall_s``) on the first 200 test images.

Recorded once from the code before the architecture refactor (tests/golden/behaviour.json) and
compared exactly afterwards: moving code must not change a single bit of what users get.
Re-record only for an intended change in behaviour:
``SNNC_RECORD_GOLDEN=1 pytest tests/test_behaviour_golden.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from support.examples import compiled_example
from support.paths import EXAMPLES

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "behaviour.json"
MODELS = ("lenet", "resnet", "silu_se")
METHODS = ("rate", "fs", "amos", "ttfs")
TARGETS = ("cpu", "loihi1", "loihi2")
SAMPLES = 200


def tensor_digests(artifact_dir: Path) -> dict[str, str]:
    """sha256 of every array in tensors.npz (its dtype, shape and bytes)."""
    with np.load(artifact_dir / "tensors.npz", allow_pickle=False) as z:
        out = {}
        for k in sorted(z.files):
            a = np.ascontiguousarray(z[k])
            h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
            out[k] = h.hexdigest()
    return out


def fingerprint(model: str, method: str, target: str) -> dict:
    """Compile ``model`` with ``method`` for ``target`` (support.examples: default options, one
    compile per session) and simulate; the refusal message when the compiler refuses the
    combination."""
    import snnc
    from snnc.errors import SnncError

    try:
        path = compiled_example(model, target, method)
    except SnncError as e:
        return {"error": str(e)}
    metrics = dict(snnc.simulate(snnc.load(path), EXAMPLES / model / "test.npz",
                                 limit=SAMPLES))
    metrics.pop("wall_s")
    return {"tensors": tensor_digests(path),
            "metrics": json.loads(json.dumps(metrics, sort_keys=True))}
