"""The DuckDB store: connection, migrations, runs, batched writer, views, export.

The schema comes from the numbered SQL files in the top-level ``migrations/`` folder
(shipped as the package ``nasfilter.migrations``), applied in order at open, each in its
own transaction, and recorded in ``schema_migrations``. A database that records a
migration this version does not know is refused. The macros in ``nasfilter/sql/*.sql``
are not migrations: they are re-created on every open (``apply_definitions``).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from nasfilter import __version__
from nasfilter.errors import RunNotFoundError, StoreError, UnknownRunError, UsageError
from nasfilter.interrupts import critical

DEFAULT_DB = "nasfilter.duckdb"
_MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def default_db_path() -> Path:
    """``$NASFILTER_DB`` or ``./nasfilter.duckdb``, made absolute."""
    return Path(os.environ.get("NASFILTER_DB") or DEFAULT_DB).expanduser().resolve()


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every shipped migration, in order."""
    out = []
    for entry in resources.files("nasfilter.migrations").iterdir():
        m = _MIGRATION_RE.match(entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    if len(set(versions)) != len(versions):  # pragma: no cover - packaging error
        raise RuntimeError(f"duplicate migration numbers: {versions}")
    return out


def lock_timeout() -> float:
    """Seconds to wait for a database another process holds (``NASFILTER_LOCK_TIMEOUT``,
    default 30)."""
    try:
        return max(0.0, float(os.environ.get("NASFILTER_LOCK_TIMEOUT", "30")))
    except ValueError:
        return 30.0


def _connect(
    p: Path, read_only: bool, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting up to ``lock_timeout()`` while another process holds it.

    A writer holds the file only while it commits a batch, so both readers and writers
    normally get in within a fraction of a second; a reader that keeps a connection open
    (a notebook) blocks writers until it closes it.
    """
    deadline = time.monotonic() + lock_timeout()
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(p), read_only=read_only, config=config or {})
        except duckdb.IOException as e:
            msg = str(e)
            if "could not set lock" in msg.lower() or "conflicting lock" in msg.lower():
                if time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 1.5, 0.5)
                    continue
                if read_only:
                    raise StoreError(
                        f"The database {p} is being written by another process and did not "
                        f"become free within {lock_timeout():g} s.",
                        "Try again in a moment, or raise NASFILTER_LOCK_TIMEOUT.",
                    ) from None
                raise StoreError(
                    f"The database {p} is held open by another process (a notebook or "
                    "another tool with an open connection?).",
                    "Close that connection (con.close()) and run the command again.",
                ) from None
            raise _open_error(p, e, read_only) from None
        except duckdb.Error as e:
            raise _open_error(p, e, read_only) from None


_MACRO_RE = re.compile(r"^CREATE OR REPLACE MACRO ", re.MULTILINE)


def definitions() -> list[tuple[str, str]]:
    """(name, sql) of every plain definition file in ``nasfilter/sql``, by name."""
    out = []
    for entry in resources.files("nasfilter.sql").iterdir():
        if entry.name.endswith(".sql"):
            out.append((entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def apply_definitions(
    con: duckdb.DuckDBPyConnection, temporary: bool = False, force: bool = False
) -> bool:
    """Run the definition files (``CREATE OR REPLACE MACRO ...``) on ``con`` in one
    transaction, unless the database already holds these exact definitions (the macro
    ``nf_definitions_sha()`` records their SHA-256) or ``force``. Returns whether it ran.

    ``temporary``: as TEMP macros, which live on this connection only and shadow the
    stored ones (for read-only connections to a database whose macros are older).
    """
    import hashlib

    defs = definitions()
    sha = hashlib.sha256("".join(f"{n}\n{t}" for n, t in defs).encode()).hexdigest()
    if not force:
        try:
            row = con.execute("SELECT nf_definitions_sha()").fetchone()
        except duckdb.Error:  # a database from before the definitions were recorded
            row = None
        if row is not None and row[0] == sha:
            return False
    defs.append(("sha", f"CREATE OR REPLACE MACRO nf_definitions_sha() AS '{sha}';"))
    con.execute("BEGIN TRANSACTION")
    try:
        for _, sql in defs:
            con.execute(_MACRO_RE.sub("CREATE OR REPLACE TEMP MACRO ", sql) if temporary else sql)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return True


def utc_now() -> datetime:
    """Naive UTC timestamp, as every table of the store records times."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store:
    """An open nasfilter database."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con
        self.path = path
        self.read_only = read_only
        self._config: dict[str, Any] | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The connection, reopened on first use after ``release``."""
        if self._con is None:
            self._con = _connect(self.path, self.read_only, self._config)
        return self._con

    def release(self) -> None:
        """Close the connection (and the file lock) until the next use.

        Long runs call this after each committed batch, so that other processes (a
        ``nasfilter runs`` in another shell, a notebook's read-only connection) get in
        between batches.
        """
        con, self._con = self._con, None
        if con is not None:
            with critical():  # a signal during close() must not leave a closed connection
                con.close()

    # -- opening --
    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        read_only: bool = False,
        config: dict[str, Any] | None = None,
    ) -> Store:
        """``config``: DuckDB settings for the connection (e.g. ``SQL_SANDBOX``)."""
        p = Path(path).expanduser().resolve() if path is not None else default_db_path()
        if read_only and not p.exists():
            raise StoreError(
                f"No database at {p}.",
                "Run `nasfilter score SPACE --n N` first, or pass --db PATH / set NASFILTER_DB.",
            )
        if not p.parent.exists():
            raise StoreError(
                f"Cannot create the database {p}: folder {p.parent} does not exist.",
                "Create it or pass another --db PATH.",
            )
        con = _connect(p, read_only, config)
        store = cls(con, p, read_only)
        store._config = config
        try:
            store._migrate()
        except duckdb.Error as e:
            con.close()
            if _permission_denied(e):  # e.g. no permission to create the .wal file
                raise _open_error(p, e, read_only) from None
            raise
        except BaseException:
            con.close()
            raise
        return store

    def close(self) -> None:
        self.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _applied(self) -> list[int]:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()
        if not exists or not exists[0]:
            return []
        return [r[0] for r in self.con.execute("SELECT version FROM schema_migrations").fetchall()]

    def schema_version(self) -> int:
        applied = self._applied()
        return max(applied) if applied else 0

    def _migrate(self) -> None:
        known = migrations()
        latest = known[-1][0]
        applied = set(self._applied())
        if applied and max(applied) > latest:
            raise StoreError(
                f"The database {self.path} has schema version {max(applied)}, newer than this "
                f"nasfilter {__version__} understands (version {latest}).",
                "Upgrade nasfilter (pip install -U nasfilter) or pass another --db PATH.",
            )
        if not applied:
            # A file that has tables but no migration record is not ours.
            n = self.con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchone()
            if n and n[0]:
                raise StoreError(
                    f"The database {self.path} was not written by nasfilter.",
                    "Pass another --db PATH.",
                )
        pending = [m for m in known if m[0] not in applied]
        if pending and self.read_only:
            raise StoreError(
                f"The database {self.path} needs an upgrade to schema version {latest}.",
                "Run any writing command (e.g. `nasfilter score`) on it first.",
            )
        for version, name, sql in pending:
            with self.transaction():
                self.con.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                    "applied_at TIMESTAMP NOT NULL, nasfilter_version VARCHAR NOT NULL)"
                )
                self.con.execute(sql)
                self.con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                    [version, name, utc_now(), __version__],
                )
        # Not migrations: the current macros and the results view, on every open.
        apply_definitions(self.con, temporary=self.read_only)
        self.refresh_views()

    @contextmanager
    def transaction(self, **views: Any) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; ``views``: Arrow tables registered by name for the block.

        The views are registered after BEGIN (which also closes any result the caller left
        open on the connection) and unregistered after COMMIT or ROLLBACK: inside an
        aborted transaction unregistering would raise and hide the real error.
        """
        self.con.execute("BEGIN TRANSACTION")
        try:
            try:
                for name, table in views.items():
                    self.con.register(name, table)
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            else:
                self.con.execute("COMMIT")
        finally:
            for name in views:
                self.con.unregister(name)

    # -- views --
    def metric_names(self) -> list[str]:
        """Metric names present in the store (scored or declared by a run), sorted."""
        names = {r[0] for r in self.con.execute("SELECT DISTINCT metric FROM scores").fetchall()}
        names.update(
            r[0] for r in self.con.execute("SELECT DISTINCT metric FROM run_metrics").fetchall()
        )
        return sorted(names)

    def refresh_views(self) -> None:
        """(Re)create ``results``: one row per (run, architecture), one column per metric.

        DuckDB cannot PIVOT on data-dependent values inside a view, so the column list
        is written out from the metric names the store holds now (a run's metrics are
        recorded before it writes, so they are always there).
        """
        if self.read_only:
            return
        cols = "".join(
            f",\n    max(s.value) FILTER (WHERE s.metric = {sql_literal(m)}) AS {_ident(m)}"
            for m in self.metric_names()
        )
        self.con.execute(
            f"""CREATE OR REPLACE VIEW results AS
SELECT s.run_id, r.space, s.arch, min(s.position) AS position,
    bool_and(s.status = 'ok') AS all_ok{cols}
FROM scores s JOIN runs r USING (run_id)
GROUP BY s.run_id, r.space, s.arch"""
        )

    # -- runs --
    def create_run(
        self,
        kind: str,
        space: str,
        settings: dict[str, Any],
        seed: int | None,
        n_requested: int | None,
        command: str | None,
        metrics: Sequence[dict[str, Any]] = (),
        origin: str | None = None,
        parent_run: int | None = None,
    ) -> int:
        """A new run (status 'running') with its metrics' metadata, in one transaction.

        ``origin``: 'score' for a user's score run (what ``latest`` names), 'search' or
        'reproduce' for runs those commands make; default: ``kind``.
        """
        with self.transaction():
            row = self.con.execute(
                "INSERT INTO runs (kind, space, settings, seed, n_requested, nasfilter_version,"
                " command, started_at, status, origin, parent_run)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) RETURNING run_id",
                [
                    kind,
                    space,
                    json.dumps(settings, sort_keys=True),
                    seed,
                    n_requested,
                    __version__,
                    command,
                    utc_now(),
                    origin or kind,
                    parent_run,
                ],
            ).fetchone()
            assert row is not None
            run_id = int(row[0])
            for m in metrics:
                self.con.execute(
                    "INSERT INTO run_metrics (run_id, metric, version, higher_is_better,"
                    " needs_model, needs_data, needs_gradients, path, description, unit,"
                    " metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        run_id,
                        m["name"],
                        m["version"],
                        m["higher_is_better"],
                        m["needs_model"],
                        m["needs_data"],
                        m["needs_gradients"],
                        m["path"],
                        m["description"],
                        m["unit"],
                        json.dumps(m, sort_keys=True, default=str),
                    ],
                )
        self.refresh_views()
        return run_id

    def add_run_archs(self, run_id: int, archs: Sequence[str], start: int = 0) -> None:
        """Record an explicit list of architectures of a run, positions from ``start``."""
        import pyarrow as pa

        t = pa.table(
            {
                "run_id": pa.array([run_id] * len(archs), pa.int32()),
                "position": pa.array(range(start, start + len(archs)), pa.int64()),
                "arch": pa.array(list(archs), pa.string()),
            }
        )
        with critical(), self.transaction(_nf_run_archs=t):
            self.con.execute("INSERT INTO run_archs SELECT * FROM _nf_run_archs")

    def run_archs(self, run_id: int) -> list[str]:
        """The recorded architectures of a list run, in order."""
        rows = self.con.execute(
            "SELECT arch FROM run_archs WHERE run_id = ? ORDER BY position", [run_id]
        ).fetchall()
        return [r[0] for r in rows]

    def set_run_status(self, run_id: int, status: str, finished: bool = True) -> None:
        self.con.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
            [status, utc_now() if finished else None, run_id],
        )

    def resolve_run(self, run: str | int | None, kind: str | None = None) -> int:
        """A run id from ``None``/``'latest'`` or a number.

        ``latest`` with ``kind='score'`` is the newest score run a user started (with
        ``nasfilter score`` or the Python API), not one a search or reproduce made for
        itself; with another kind, the newest run of that kind. A number names any run;
        with ``kind='score'``, a search's id is refused with the score runs it made.
        """
        if run is None or str(run).strip().lower() == "latest":
            where, params = "", []
            if kind == "score":
                where = " WHERE kind = 'score' AND coalesce(origin, 'score') = 'score'"
            elif kind:
                where, params = " WHERE kind = ?", [kind]
            row = self.con.execute("SELECT max(run_id) FROM runs" + where, params).fetchone()
            if row is None or row[0] is None:
                what = f"{kind} run" if kind else "run"
                made = []
                if kind == "score":
                    made = [
                        str(r[0])
                        for r in self.con.execute(
                            "SELECT run_id FROM runs WHERE kind = 'score' ORDER BY run_id"
                        ).fetchall()
                    ]
                if made:
                    raise RunNotFoundError(
                        f"The database {self.path} has no score run started with `nasfilter "
                        f"score` ('latest'); runs made by searches: {', '.join(made)}.",
                        "Pass a run id, or score with `nasfilter score SPACE --n N`.",
                    )
                raise RunNotFoundError(
                    f"The database {self.path} has no {what} yet.",
                    "Run `nasfilter score SPACE --n N` first.",
                )
            return int(row[0])
        try:
            run_id = int(str(run).strip())
        except (TypeError, ValueError):
            raise UsageError(f"Run id must be a number or 'latest', not {run!r}.") from None
        row = self.con.execute("SELECT kind FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise UnknownRunError(
                f"No run {run_id} in {self.path}.", "List runs with `nasfilter runs`."
            )
        if kind == "score" and row[0] != "score":
            made = [
                str(r[0])
                for r in self.con.execute(
                    "SELECT run_id FROM runs WHERE parent_run = ? ORDER BY run_id", [run_id]
                ).fetchall()
            ]
            hint = (
                f"Its candidates were scored in run(s) {', '.join(made)}; pass one of them."
                if made
                else "Pass a score run (see `nasfilter runs`)."
            )
            raise UsageError(f"Run {run_id} is a {row[0]} run, not a score run.", hint)
        return run_id

    def get_run(self, run_id: int) -> dict[str, Any]:
        cur = self.con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id])
        cols = [d[0] for d in cur.description]
        row = cur.fetchone()
        if row is None:
            raise RunNotFoundError(f"No run {run_id} in {self.path}.")
        out = dict(zip(cols, row, strict=True))
        out["settings"] = json.loads(out["settings"])
        return out

    def run_metrics(self, run_id: int) -> list[dict[str, Any]]:
        cur = self.con.execute(
            "SELECT * FROM run_metrics WHERE run_id = ? ORDER BY metric", [run_id]
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def done_archs(self, run_id: int, n_metrics: int) -> set[str]:
        """Architectures of a run that have a row for every one of its metrics.

        ``n_metrics``: the number of the run's metrics (``run_metrics`` rows). Rank
        aggregates (path ``rank``) are written over the whole run when it completes, not
        per architecture: they are left out of both the count and the rows."""
        rows = self.con.execute(
            "SELECT s.arch FROM scores s LEFT JOIN run_metrics m "
            "ON m.run_id = s.run_id AND m.metric = s.metric "
            "WHERE s.run_id = ? AND coalesce(m.path, '') <> 'rank' "
            "GROUP BY s.arch HAVING count(*) >= ? - (SELECT count(*) FROM run_metrics "
            "WHERE run_id = ? AND path = 'rank')",
            [run_id, n_metrics, run_id],
        ).fetchall()
        return {r[0] for r in rows}

    def has_scores(self, run_id: int) -> bool:
        """Whether any score row of run ``run_id`` is stored."""
        row = self.con.execute(
            "SELECT EXISTS (SELECT 1 FROM scores WHERE run_id = ?)", [run_id]
        ).fetchone()
        return bool(row and row[0])

    def has_architectures(self, space: str) -> bool:
        """Whether any architecture of ``space`` is stored."""
        row = self.con.execute(
            "SELECT EXISTS (SELECT 1 FROM architectures WHERE space = ?)", [space]
        ).fetchone()
        return bool(row and row[0])

    def write_rank_aggregates(self, run_id: int) -> dict[str, dict[str, int]]:
        """(Re)compute every rank aggregate of run ``run_id`` over the run's
        architectures (the SQL macro ``rank_aggregate``, nasfilter/sql/aggregate.sql) and
        store them in ``scores``, replacing earlier values, in one transaction. Returns
        the count of each status, by metric (empty when the run has none)."""
        names = [
            r[0]
            for r in self.con.execute(
                "SELECT metric FROM run_metrics WHERE run_id = ? AND path = 'rank' ORDER BY metric",
                [run_id],
            ).fetchall()
        ]
        out: dict[str, dict[str, int]] = {}
        if not names:
            return out
        with critical(), self.transaction() as con:
            for name in names:
                con.execute(
                    "INSERT OR REPLACE INTO scores (run_id, arch, metric, position, value, "
                    "status, seconds) SELECT ?, arch, ?, position, value, status, seconds "
                    "FROM rank_aggregate(?, ?)",
                    [run_id, name, run_id, name],
                )
                out[name] = {
                    st: int(n)
                    for st, n in con.execute(
                        "SELECT status, count(*) FROM scores WHERE run_id = ? AND metric = ? "
                        "GROUP BY status ORDER BY status",
                        [run_id, name],
                    ).fetchall()
                }
        return out

    # -- queries --
    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        try:
            cur = self.con.execute(sql, params or [])
        except duckdb.Error as e:
            raise UsageError(f"SQL error: {_sentence(str(e))}") from None
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()


#: DuckDB settings of the connection ``nasfilter sql`` runs user SQL on (with read_only):
#: no file, extension, secret or ATTACH access outside the database itself
#: (COPY ... TO, EXPORT DATABASE, ATTACH, INSTALL, read_csv('/any/file') are refused by
#: DuckDB), no spilling to a temp folder, and the configuration locked (SET, RESET and
#: setting PRAGMAs refused; nothing can turn the first two back on).
SQL_SANDBOX: dict[str, Any] = {
    "enable_external_access": False,
    "temp_directory": "",
    "lock_configuration": True,
}


def read_only_query(path: str | Path | None, sql: str) -> tuple[list[str], list[tuple]]:
    """Run one query of user SQL on a read-only, sandboxed connection (``SQL_SANDBOX``).

    DuckDB's own parser splits and classifies the text (``extract_statements``): exactly
    one statement, of type SELECT (SELECT, WITH, FROM, VALUES, SHOW, DESCRIBE, SUMMARIZE,
    PIVOT and the table macros), or ``UsageError`` before anything runs. That refuses what
    the settings cannot (a TEMP table or view lives in the connection's memory, and an
    informational PRAGMA writes nothing); the settings refuse every write to a file even
    from inside a SELECT.
    """
    if not sql.strip():
        raise UsageError("No SQL given.", 'Pass a query, e.g. nasfilter sql "SELECT * FROM runs".')
    with Store.open(path, read_only=True, config=SQL_SANDBOX) as store:
        try:
            statements = store.con.extract_statements(sql)
        except duckdb.Error as e:
            raise UsageError(f"SQL error: {_sentence(str(e))}") from None
        if not statements:
            raise UsageError(
                "No SQL statement given (only comments or semicolons).",
                'Pass a query, e.g. nasfilter sql "SELECT * FROM runs".',
            )
        if len(statements) > 1:
            raise UsageError(
                f"nasfilter sql runs one statement at a time; this text has "
                f"{len(statements)}. Nothing was run.",
                "Run them one by one.",
            )
        kind = statements[0].type
        if kind != duckdb.StatementType.SELECT:
            raise UsageError(
                f"nasfilter sql is read-only and runs queries only (SELECT, WITH, FROM, "
                f"VALUES, SHOW, DESCRIBE, SUMMARIZE), not {kind.name} statements. "
                "Nothing was run.",
                "To write, use the duckdb CLI on a copy of the database.",
            )
        return store.query(sql)


def _sentence(text: str) -> str:
    """The first line of ``text`` as a sentence: one full stop at the end, never two."""
    lines = str(text).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if first.endswith(("?", "!")):
        return first
    return first.rstrip(". ") + "."


def _permission_denied(e: Exception) -> bool:
    """Whether DuckDB's error is the operating system's EACCES or EPERM."""
    low = str(e).lower()
    return "permission denied" in low or "operation not permitted" in low


def _open_error(p: Path, e: Exception, read_only: bool) -> StoreError:
    """The one-line error for a database that cannot be opened (or first written)."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    low = msg.lower()
    if "could not set lock" in low or "conflicting lock" in low:
        return StoreError(
            f"The database {p} is in use by another process (a run in progress?).",
            "Wait for it to finish, or pass another --db PATH.",
        )
    need = os.R_OK if read_only else os.R_OK | os.W_OK
    if _permission_denied(e) or (p.exists() and not os.access(p, need)):
        what = "read" if read_only else "read and write"
        return StoreError(
            f"Cannot open the database {p}: permission denied (this command needs to {what} "
            "the file" + ("" if read_only else ", and to create its .wal file beside it") + ").",
            "Check the permissions of the file and its folder, or pass another --db PATH.",
        )
    return StoreError(
        f"Cannot open the database {p}: {_sentence(msg)}",
        "Is it a DuckDB file written by nasfilter? Pass another --db PATH.",
    )


def _ident(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """A SQL string literal, quoted (the one quoting helper for values pasted into SQL)."""
    return "'" + str(value).replace("'", "''") + "'"


class BatchWriter:
    """Buffers the results of architectures and commits them in batches through Arrow.

    The caller decides when to ``flush`` (the engine: every ``batch_rows`` rows or every
    few seconds, always between architectures). Each flush is one transaction:
    architectures (insert-or-ignore), scores, per-architecture timings and, for a list
    run that grows as it goes (``record_list``), the run's list of architectures. A
    batch that is interrupted mid-way is rolled back whole and never visible.

    Rows already stored are kept as they are (``ON CONFLICT DO NOTHING``): a resumed run
    may score an architecture again. ``new_scores`` / ``new_archs``: the caller expects
    none of its score rows / architectures to be stored yet (a run's first execution;
    a space with no architecture stored), so plain INSERTs are tried first, several
    times faster into the keyed tables. The primary keys still refuse any duplicate: a
    batch that has one is rolled back and written again the conflict-tolerant way (and
    so is every later batch), so the rows stored are the same either way.
    """

    SCORE_COLS = ("run_id", "arch", "metric", "position", "value", "status", "seconds")
    ARCH_COLS = ("space", "arch", "params", "flops", "size_kb")

    def __init__(
        self,
        store: Store,
        run_id: int,
        batch_rows: int = 20000,
        record_list: bool = False,
        new_scores: bool = False,
        new_archs: bool = False,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.batch_rows = batch_rows
        self.record_list = record_list
        self.new_scores = new_scores
        self.new_archs = new_archs
        self._clear()
        self.rows_written = 0

    def _clear(self) -> None:
        self._scores: dict[str, list[Any]] = {c: [] for c in self.SCORE_COLS}
        self._archs: dict[str, list[Any]] = {c: [] for c in self.ARCH_COLS}
        self._timings: dict[str, list[Any]] = {
            "arch": [],
            "build_seconds": [],
            "pass_seconds": [],
        }
        self._list: dict[str, list[Any]] = {"position": [], "arch": []}
        self._chunk_scores: list[Any] = []  # Arrow tables of add_chunk
        self._chunk_archs: list[Any] = []
        self._chunk_rows = 0

    def add_architecture(
        self, space: str, arch: str, params: int | None, flops: int | None
    ) -> None:
        a = self._archs
        a["space"].append(space)
        a["arch"].append(arch)
        a["params"].append(params)
        a["flops"].append(flops)
        a["size_kb"].append(params / 1000.0 if params is not None else None)

    def add_score(
        self, arch: str, metric: str, position: int, value: float, status: str, seconds: float
    ) -> None:
        s = self._scores
        s["run_id"].append(self.run_id)
        s["arch"].append(arch)
        s["metric"].append(metric)
        s["position"].append(position)
        s["value"].append(value)
        s["status"].append(status)
        s["seconds"].append(seconds)

    def add_result(self, space: str, res: Any) -> None:
        """Every row of one architecture's ``ArchResult`` (see nasfilter.scoring)."""
        self.add_architecture(space, res.arch, res.params, res.flops)
        for name, value, status, seconds in res.rows:
            self.add_score(res.arch, name, res.position, value, status, seconds)
        if res.build_seconds is not None:
            t = self._timings
            t["arch"].append(res.arch)
            t["build_seconds"].append(res.build_seconds)
            t["pass_seconds"].append(res.pass_seconds)
        if self.record_list:
            self._list["position"].append(res.position)
            self._list["arch"].append(res.arch)

    def add_chunk(self, space: str, chunk: Any) -> None:
        """Every row of a ``ChunkResult`` (many architectures, by column), kept as Arrow
        tables until the flush (no per-row Python objects)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(chunk)
        if n == 0:
            return
        archs = pa.array(chunk.archs, pa.string())

        def counts(arr: Any) -> Any:
            if arr is None:
                return pa.nulls(n, pa.int64())
            a = np.asarray(arr, dtype=np.float64)
            return pa.array(np.nan_to_num(a).astype(np.int64), pa.int64(), mask=np.isnan(a))

        params = counts(chunk.params)
        self._chunk_archs.append(
            pa.table(
                {
                    "space": pa.array([space] * n, pa.string()),
                    "arch": archs,
                    "params": params,
                    "flops": counts(chunk.flops),
                    "size_kb": pc.divide(pc.cast(params, pa.float64()), 1000.0),
                }
            )
        )
        positions = pa.array(chunk.positions, pa.int64())
        run_ids = pa.array(np.full(n, self.run_id, dtype=np.int32), pa.int32())
        for name, (values, statuses, seconds) in chunk.columns.items():
            self._chunk_scores.append(
                pa.table(
                    {
                        "run_id": run_ids,
                        "arch": archs,
                        "metric": pa.array([name] * n, pa.string()),
                        "position": positions,
                        "value": pa.array(np.asarray(values, dtype=np.float64), pa.float64()),
                        "status": pa.array(statuses, pa.string()),
                        "seconds": pa.array(np.full(n, seconds, dtype=np.float64), pa.float64()),
                    }
                )
            )
            self._chunk_rows += n

    @property
    def pending(self) -> int:
        return len(self._scores["arch"]) + self._chunk_rows

    def flush(self) -> int:
        import pyarrow as pa

        n = self.pending
        if n == 0 and not self._archs["arch"] and not self._chunk_archs:
            return 0
        scores = pa.table(
            {
                "run_id": pa.array(self._scores["run_id"], pa.int32()),
                "arch": pa.array(self._scores["arch"], pa.string()),
                "metric": pa.array(self._scores["metric"], pa.string()),
                "position": pa.array(self._scores["position"], pa.int64()),
                "value": pa.array(self._scores["value"], pa.float64()),
                "status": pa.array(self._scores["status"], pa.string()),
                "seconds": pa.array(self._scores["seconds"], pa.float64()),
            }
        )
        archs = pa.table(
            {
                "space": pa.array(self._archs["space"], pa.string()),
                "arch": pa.array(self._archs["arch"], pa.string()),
                "params": pa.array(self._archs["params"], pa.int64()),
                "flops": pa.array(self._archs["flops"], pa.int64()),
                "size_kb": pa.array(self._archs["size_kb"], pa.float64()),
            }
        )
        timings = pa.table(
            {
                "run_id": pa.array([self.run_id] * len(self._timings["arch"]), pa.int32()),
                "arch": pa.array(self._timings["arch"], pa.string()),
                "build_seconds": pa.array(self._timings["build_seconds"], pa.float64()),
                "pass_seconds": pa.array(self._timings["pass_seconds"], pa.float64()),
            }
        )
        if self._chunk_scores:
            scores = pa.concat_tables([scores, *self._chunk_scores])
            archs = pa.concat_tables([archs, *self._chunk_archs])
        listed = pa.table(
            {
                "run_id": pa.array([self.run_id] * len(self._list["arch"]), pa.int32()),
                "position": pa.array(self._list["position"], pa.int64()),
                "arch": pa.array(self._list["arch"], pa.string()),
            }
        )
        with critical():  # a signal arriving now is raised after the commit
            while True:
                try:
                    with self.store.transaction(
                        _nf_archs=archs, _nf_scores=scores, _nf_timings=timings, _nf_list=listed
                    ) as con:
                        self._insert(con, timings.num_rows > 0, listed.num_rows > 0)
                    break
                except duckdb.ConstraintException:
                    if not (self.new_scores or self.new_archs):
                        raise
                    # a row was stored already (or came twice): rolled back; again, safely
                    self.new_scores = self.new_archs = False
            self._clear()
            self.rows_written += n
        return n

    def _insert(self, con: duckdb.DuckDBPyConnection, timings: bool, listed: bool) -> None:
        """The INSERTs of one batch, from the registered views ``_nf_*``."""
        if self.new_archs:
            con.execute("INSERT INTO architectures SELECT * FROM _nf_archs")
        else:
            con.execute(
                "INSERT INTO architectures SELECT DISTINCT * FROM _nf_archs ON CONFLICT DO NOTHING"
            )
        if self.new_scores:
            con.execute("INSERT INTO scores SELECT * FROM _nf_scores")
        else:
            con.execute("INSERT INTO scores SELECT * FROM _nf_scores ON CONFLICT DO NOTHING")
        if timings:
            con.execute("INSERT INTO arch_timings SELECT * FROM _nf_timings ON CONFLICT DO NOTHING")
        if listed:
            con.execute("INSERT INTO run_archs SELECT * FROM _nf_list ON CONFLICT DO NOTHING")


def export_parquet(store: Store, run_id: int, out: Path, force: bool = False) -> int:
    """One row per architecture of a run: space, arch, then per metric its value and its
    status (``<metric>_status``); ``params`` and ``size_kb`` first, ``params`` an integer.

    The run's record (its row of ``runs`` with the whole settings JSON: seed, data,
    penalty, ...) and its metrics' metadata (``run_metrics``: versions, directions, how
    computed) go into the file as Parquet key-value metadata, as JSON under the keys
    ``nasfilter.run`` and ``nasfilter.metrics`` (and ``nasfilter.version``).

    An existing file is replaced only with ``force``; the open database and its WAL never
    (``UsageError``). The file is written under a temporary name in the same folder and
    renamed when complete, so a failed export leaves nothing behind.
    """
    import tempfile

    out = Path(out).expanduser().resolve()
    _check_export_target(store, out, force)
    run = store.get_run(run_id)
    metrics = store.run_metrics(run_id)
    names = [m["metric"] for m in metrics]
    order = [m for m in ("params", "size_kb") if m in names]
    order += [m for m in names if m not in order]
    cols = []
    for m in order:
        value = f"max(s.value) FILTER (WHERE s.metric = {sql_literal(m)})"
        if m == "params":  # a count; NULL (not a number) where it is not finite
            value = f"CASE WHEN isfinite({value}) THEN CAST({value} AS BIGINT) END"
        cols.append(f"{value} AS {_ident(m)}")
        status = f"max(s.status) FILTER (WHERE s.metric = {sql_literal(m)})"
        cols.append(f"{status} AS {_ident(m + '_status')}")
    sql = f"""
        SELECT r.space, s.arch, {", ".join(cols)}
        FROM scores s JOIN runs r USING (run_id)
        WHERE s.run_id = {int(run_id)}
        GROUP BY r.space, s.arch
        ORDER BY min(s.position)
    """
    meta = {
        "nasfilter.run": json.dumps(run, sort_keys=True, default=str),
        "nasfilter.metrics": json.dumps(metrics, sort_keys=True, default=str),
        "nasfilter.version": __version__,
    }
    kv = ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in meta.items())
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        store.con.execute(
            f"COPY ({sql}) TO {sql_literal(str(tmp))} (FORMAT PARQUET, KV_METADATA {{{kv}}})"
        )
        os.replace(tmp, out)
    except (OSError, duckdb.Error) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UsageError(f"Cannot write {out}: {_sentence(why)}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    row = store.con.execute(
        f"SELECT count(*) FROM read_parquet({sql_literal(str(out))})"
    ).fetchone()
    return int(row[0]) if row else 0


def _check_export_target(store: Store, out: Path, force: bool) -> None:
    """Refuse a folder, a missing folder, the open database or its WAL (even with
    ``force``), and an existing file unless ``force``."""
    if out.is_dir():
        raise UsageError(
            f"Cannot write {out}: it is a folder.",
            f"Pass a file name, e.g. --out {out / 'run.parquet'}.",
        )
    if not out.parent.is_dir():
        raise UsageError(f"Cannot write {out}: folder {out.parent} does not exist.")
    db = Path(store.path).resolve()
    protected = [db, db.with_name(db.name + ".wal")]
    if out in protected or any(
        out.exists() and p.exists() and os.path.samefile(out, p) for p in protected
    ):
        raise UsageError(
            f"Refusing to write the export onto the database {db} itself (or its WAL).",
            "Pass another --out FILE.parquet.",
        )
    if out.exists() and not force:
        raise UsageError(
            f"{out} already exists; nothing was written.",
            "Pass --force to replace it, or another --out FILE.parquet.",
        )
