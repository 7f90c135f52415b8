"""Errors the engine raises on bad input; all are ValueErrors so callers can catch one type."""


class NSTError(ValueError):
    """Base class of every error that a caller's input (not a bug) can cause."""


class WeightsError(NSTError):
    """A weights file is missing, unreadable, unsafe, or not a VGG the engine knows."""


class LayerError(NSTError):
    """A layer name is not in the network."""


class ImageError(NSTError):
    """An image has an unusable shape, size or value range."""
