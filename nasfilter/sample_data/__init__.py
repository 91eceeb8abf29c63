"""Data shipped with nasfilter: ``nb201_sample.csv`` (see README.md in this folder)."""
