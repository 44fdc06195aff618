"""Anatomy: templates and atlases from the nilearn and deepmriprep wheels, tissue labels and regions."""
