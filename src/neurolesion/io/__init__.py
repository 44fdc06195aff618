"""Inputs and outputs: NIfTI, DICOM series (with sequence detection), BIDS, RTSTRUCT, DICOM SEG."""
