"""neurolesion: segment and quantify brain lesions on MRI on an ordinary CPU.

The public API is deliberately small::

    import neurolesion as nl
    case = nl.load_case("dicom_folder/")          # or a NIfTI file or a BIDS subject folder
    vol = nl.load_nifti("flair.nii.gz")           # one image as a Volume

Everything else lives in the sub-packages named after the pipeline stages.
"""

from neurolesion.errors import InputError, NeurolesionError
from neurolesion.volume import Volume

__version__ = "0.1.0"

__all__ = ["InputError", "NeurolesionError", "Volume", "__version__", "load_case", "load_nifti"]


def __getattr__(name: str) -> object:
    # Lazy entry points keep `import neurolesion` light (no torch, no pydicom until needed).
    if name == "load_nifti":
        from neurolesion.io.nifti import load_nifti

        return load_nifti
    if name == "load_case":
        from neurolesion.io.case import load_case

        return load_case
    raise AttributeError(f"module 'neurolesion' has no attribute {name!r}")
