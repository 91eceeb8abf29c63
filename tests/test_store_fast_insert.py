"""The writer's plain INSERTs for rows not stored yet (a run's first execution): the same
rows as the conflict-tolerant path, a fallback when a row is stored after all, and resume
after an interrupted first execution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nasfilter import engine
from nasfilter.store import BatchWriter, Store

ROWS = "SELECT run_id, arch, metric, position, value, status FROM scores"


def _rows(s: Store, run: int) -> list[tuple[Any, ...]]:
    return s.con.execute(f"{ROWS} WHERE run_id = ? ORDER BY arch, metric", [run]).fetchall()


def _same_rows(s: Store, a: int, b: int) -> None:
    """Runs ``a`` and ``b`` stored the same rows (but for run id and timings)."""
    ra, rb = _rows(s, a), _rows(s, b)
    assert len(ra) == len(rb) > 0
    assert [r[1:] for r in ra] == [r[1:] for r in rb]


def _no_duplicates(s: Store) -> None:
    total, distinct = s.con.execute(
        "SELECT count(*), count(DISTINCT (run_id, arch, metric)) FROM scores"
    ).fetchone()
    assert total == distinct
    total, distinct = s.con.execute(
        "SELECT count(*), count(DISTINCT (space, arch)) FROM architectures"
    ).fetchone()
    assert total == distinct


class _Spy:
    """Records each flush's insert mode (new_scores, new_archs) and its row count."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.modes: list[tuple[bool, bool, int]] = []
        orig = BatchWriter._insert

        def spy(w: BatchWriter, con: Any, timings: bool, listed: bool) -> None:
            n = con.execute("SELECT count(*) FROM _nf_scores").fetchone()[0]
            self.modes.append((w.new_scores, w.new_archs, n))
            orig(w, con, timings, listed)

        monkeypatch.setattr(BatchWriter, "_insert", spy)


def test_a_first_execution_inserts_plainly_and_stores_what_the_safe_path_stores(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch)
    req = engine.ScoreRequest(space="nb101", n=3000, seed=4)
    with Store.open(db) as s:
        fast = engine.start(s, req)
        engine.execute(s, fast, batch_rows=5000, chunk_size=1000)
        # first execution, empty store: plain INSERTs, several batches
        assert len(spy.modes) >= 2 and all(m[:2] == (True, True) for m in spy.modes)
        spy.modes.clear()
        with monkeypatch.context() as mp:  # the same run, the conflict-tolerant way
            mp.setattr(Store, "has_scores", lambda self, run_id: True)
            safe = engine.start(s, req)
            engine.execute(s, safe, batch_rows=5000, chunk_size=1000)
        assert spy.modes and all(m[:2] == (False, False) for m in spy.modes)
        _same_rows(s, fast, safe)
        spy.modes.clear()
        # a second run of the space: its scores are new, its architectures are not
        again = engine.start(s, req)
        engine.execute(s, again)
        assert [m[:2] for m in spy.modes] == [(True, False)]  # one batch: analytic default
        _same_rows(s, fast, again)
        _no_duplicates(s)
        assert s.con.execute("SELECT count(*) FROM architectures").fetchone() == (3000,)


def test_a_stored_or_repeated_row_rolls_the_batch_back_and_writes_it_safely(db: Path) -> None:
    with Store.open(db) as s:
        run = s.create_run("score", "nats-sss", {"x": 1}, 0, 3, None)
        w = BatchWriter(s, run)
        w.add_architecture("nats-sss", "8:8:8:8:8", 11714, 4481114)
        w.add_score("8:8:8:8:8", "a", 0, 1.0, "ok", 0.1)
        w.flush()
        # a writer that wrongly expects nothing stored: the first pair exists already
        w = BatchWriter(s, run, new_scores=True, new_archs=True)
        w.add_architecture("nats-sss", "8:8:8:8:8", 11714, 4481114)
        w.add_score("8:8:8:8:8", "a", 0, 2.0, "ok", 0.1)  # stored: kept as it was
        w.add_architecture("nats-sss", "16:8:8:8:8", 1, 2)
        w.add_score("16:8:8:8:8", "a", 1, 3.0, "ok", 0.1)
        assert w.flush() == 2
        assert (w.new_scores, w.new_archs) == (False, False)  # and from now on
        assert [r[1:5] for r in _rows(s, run)] == [
            ("16:8:8:8:8", "a", 1, 3.0),
            ("8:8:8:8:8", "a", 0, 1.0),
        ]
        # a row given twice in one batch: stored once
        w = BatchWriter(s, run, new_scores=True, new_archs=True)
        for _ in range(2):
            w.add_architecture("nats-sss", "24:8:8:8:8", 3, 4)
            w.add_score("24:8:8:8:8", "a", 2, 5.0, "ok", 0.1)
        w.flush()
        assert len(_rows(s, run)) == 3
        _no_duplicates(s)
        assert s.con.execute("SELECT count(*) FROM architectures").fetchone() == (3,)


def test_a_killed_first_execution_resumes_to_the_rows_of_an_uninterrupted_run(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after some batches of plain INSERTs; the resume writes the rest the
    conflict-tolerant way; the rows equal those of a run that was never interrupted."""
    spy = _Spy(monkeypatch)
    req = engine.ScoreRequest(space="nb101", n=2500, seed=9, metrics="relu_count,params")
    seen = {"n": 0}

    def stop(n: int) -> None:
        seen["n"] += n
        if seen["n"] >= 1200:
            raise KeyboardInterrupt

    with Store.open(db) as s:
        run = engine.start(s, req)
        with pytest.raises(engine.RunInterrupted):
            engine.execute(s, run, on_progress=stop, batch_rows=1000, chunk_size=250)
        kept = s.con.execute(
            "SELECT count(DISTINCT arch) FROM scores WHERE run_id = ?", [run]
        ).fetchone()[0]
        assert 0 < kept < 2500
        assert all(m[:2] == (True, True) for m in spy.modes)
        spy.modes.clear()
        summary = engine.execute(s, run)
        assert summary.archs_skipped == kept and summary.archs_scored == 2500 - kept
        assert spy.modes and all(m[:2] == (False, False) for m in spy.modes)
        other = engine.start(s, req)
        engine.execute(s, other)
        _same_rows(s, run, other)
        _no_duplicates(s)
