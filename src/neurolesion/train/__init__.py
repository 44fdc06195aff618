"""train stage of the neurolesion pipeline."""
