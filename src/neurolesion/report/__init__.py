"""report stage of the neurolesion pipeline."""
