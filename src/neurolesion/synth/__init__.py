"""Lesion simulator: random heads from real anatomy, MR contrasts and every lesion type with exact truth."""
