"""Plain SQL definitions (macros) that the store re-creates on every open.

Unlike the numbered migrations (top-level ``migrations/``, shipped as
``nasfilter.migrations``), these files hold no tables and no data: every statement is
``CREATE OR REPLACE MACRO``, run by ``nasfilter.store.apply_definitions`` after the
migrations, so a fix to a macro reaches every database without a migration.
"""
