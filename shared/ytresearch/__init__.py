"""YouTube Research Tool domain package (installed from ``shared/``, imported as ``ytresearch``)."""

__version__ = "0.1.0"
