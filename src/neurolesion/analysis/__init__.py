"""analysis stage of the neurolesion pipeline."""
