"""nasfilter: training-free scoring of neural architectures, streamed into DuckDB."""

__version__ = "0.1.0"
