"""qinglang: an engine that online platforms run to protect minors."""

__version__ = "0.1.0"
