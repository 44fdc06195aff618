"""io stage of the neurolesion pipeline."""
