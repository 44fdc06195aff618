"""What `neurolesion info` reports: versions, threads, devices and shipped models."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import neurolesion

_LIBRARIES = (
    "numpy",
    "scipy",
    "nibabel",
    "SimpleITK",
    "pydicom",
    "highdicom",
    "torch",
    "monai",
    "connected-components-3d",
    "nilearn",
    "deepbet",
    "deepmriprep",
    "fastapi",
    "dask",
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def system_info() -> dict[str, Any]:
    """Collect package, library and device information.

    Returns:
        A JSON-serialisable dict with sections ``neurolesion``, ``libraries``, ``compute``, ``models``.

    Example:
        >>> sorted(system_info())[:2]
        ['compute', 'libraries']
    """
    import torch

    compute: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        compute["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "neurolesion": {
            "version": neurolesion.__version__,
            "location": os.path.dirname(neurolesion.__file__),
        },
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "compute": compute,
        "models": _shipped_models(),
    }


def _shipped_models() -> list[str]:
    """One line per model shipped in the package."""
    from neurolesion.models.card import shipped_models

    lines = [
        f"{c.name}: {c.arch}, tasks {', '.join(c.tasks)}, inputs {', '.join(c.inputs)}"
        + (", mirror TTA" if c.tta else "")
        for c in shipped_models()
    ]
    return lines or ["none shipped yet"]
