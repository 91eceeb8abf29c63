"""Package layout only (everything else is in pyproject.toml).

The numbered SQL migrations live in the top-level ``migrations/`` folder (the project's
layout) and ship inside the package as ``nasfilter.migrations``. pyproject.toml cannot
combine automatic package discovery with one extra mapped folder, hence this file.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["nasfilter", "nasfilter.*"]), "nasfilter.migrations"],
    package_dir={"nasfilter.migrations": "migrations"},
)
