"""preprocess stage of the neurolesion pipeline."""
