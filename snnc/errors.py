"""Exception hierarchy. Every user-facing failure is an ``SnncError``; the CLI prints its message
as one ``error: ...`` line and exits 2. ``assert`` is kept for internal invariants only."""

from __future__ import annotations

__all__ = [
    "SnncError",
    "FrontendError",
    "InvalidModel",
    "UnsupportedOp",
    "IRVerificationError",
    "PassError",
    "BadData",
    "TargetConstraintError",
    "CapacityExceeded",
    "ArtifactError",
    "BackendError",
]


class SnncError(Exception):
    """Base class of every error caused by user input (models, data, artifacts, options)."""


class FrontendError(SnncError):
    """The ONNX model cannot be loaded into the IR."""


class InvalidModel(FrontendError):
    """The file is not a valid ONNX model (corrupt, cyclic, missing tensors, NaN weights...)."""


class UnsupportedOp(FrontendError):
    """The model is valid ONNX but uses ops or attributes snnc cannot lower."""


class IRVerificationError(SnncError):
    """An IR invariant is broken; the message names the node and shows the IR around it."""


class PassError(SnncError):
    """A compiler pass failed; the message names the pass and the passes run before it."""


class BadData(SnncError):
    """A data file (calibration, test, fine-tuning) has the wrong keys, shapes or values."""


class TargetConstraintError(SnncError):
    """The network does not fit the target; the message names layer, resource, demand and limit."""


CapacityExceeded = TargetConstraintError


class ArtifactError(SnncError):
    """A compiled artifact is missing, corrupt, tampered with or from another schema version."""


class BackendError(SnncError):
    """A backend (reference simulator, Lava, exporters) cannot run or express the network."""
