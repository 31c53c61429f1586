"""Clipper: frame-exact video clipping at close to stream-copy speed."""

__version__ = "0.1.0"
