"""service stage of the neurolesion pipeline."""
