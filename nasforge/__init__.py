"""nasforge: neural architecture search — spaces, strategies, estimators, hardware-aware objectives."""

__version__ = "0.1.0"
