"""models stage of the neurolesion pipeline."""
