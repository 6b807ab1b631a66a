"""Plain-Python twins of the Cython core: slow, obvious, and what the property tests compare with."""
