"""metrics stage of the neurolesion pipeline."""
