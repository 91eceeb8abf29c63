"""The numbered schema migrations (001_*.sql, ...), shipped as ``nasfilter.migrations``.

This folder sits at the top of the repository; pyproject.toml/setup.py map it to the
package ``nasfilter.migrations``, so wheels and editable installs both carry it.
"""
