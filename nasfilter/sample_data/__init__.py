"""Data shipped with nasfilter: ``nb201_sample.csv`` and ``nb101_sample.csv`` (see
README.md in this folder)."""
