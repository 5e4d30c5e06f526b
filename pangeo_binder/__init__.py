"""pangeo-binder: pinned, reproducible Pangeo images from notebook repositories."""

__version__ = "0.1.0"
