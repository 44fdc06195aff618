"""infer stage of the neurolesion pipeline."""
