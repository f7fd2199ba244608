"""2D person detectors that run on CPU in pure PyTorch: checkpoint reading and the networks that use it."""
