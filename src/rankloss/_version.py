"""The version of rankloss, in a leaf module so that every layer may read it."""

__version__ = "0.2.0"
