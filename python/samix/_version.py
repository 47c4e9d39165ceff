"""Version of the samix Python package (must match the library's ``samix_version()``)."""

__version__ = "0.1.0"
