"""Exceptions shared by every stage.

`InputError` is the user's problem (bad file, missing sequence, absurd geometry): the CLI prints its
message on one line and exits with code 2. Anything else is ours: exit code 1.
"""


class NeurolesionError(Exception):
    """Base class of every error raised on purpose by neurolesion."""


class InputError(NeurolesionError, ValueError):
    """The input cannot be used. The message names the file, the value and what was expected.

    Example:
        >>> raise InputError("scan.nii.gz: image is 4D (shape 64x64x30x5); expected a 3D volume")
        Traceback (most recent call last):
        ...
        neurolesion.errors.InputError: scan.nii.gz: image is 4D (shape 64x64x30x5); expected a 3D volume
    """
