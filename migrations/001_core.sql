-- 001: runs, architectures, scores.
-- Applied once, in order, by nasfilter.store; recorded in schema_migrations.

CREATE SEQUENCE runs_seq START 1;

-- One row per invocation that writes results (score, search, ...).
CREATE TABLE runs (
    run_id            INTEGER PRIMARY KEY DEFAULT nextval('runs_seq'),
    kind              VARCHAR NOT NULL,      -- 'score', 'search', ...
    space             VARCHAR NOT NULL,
    settings          JSON NOT NULL,         -- every parameter of the run
    seed              BIGINT,
    n_requested       BIGINT,                -- architectures asked for
    nasfilter_version VARCHAR NOT NULL,
    command           VARCHAR,               -- the command line, for the record
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP,
    status            VARCHAR NOT NULL       -- running | completed | interrupted | failed
);

-- The metrics of a run, with the metadata they had when it ran.
CREATE TABLE run_metrics (
    run_id            INTEGER NOT NULL,
    metric            VARCHAR NOT NULL,
    version           VARCHAR NOT NULL,
    higher_is_better  BOOLEAN NOT NULL,
    needs_model       BOOLEAN NOT NULL,
    needs_data        BOOLEAN NOT NULL,
    needs_gradients   BOOLEAN NOT NULL,
    path              VARCHAR NOT NULL,      -- 'analytic' or 'model': how it was computed
    description       VARCHAR,
    unit              VARCHAR,
    PRIMARY KEY (run_id, metric)
);

-- Architectures by canonical identity, with reference costs
-- (CIFAR-10 shape: 10 classes, 32x32 inputs; size at 1 byte per parameter).
CREATE TABLE architectures (
    space    VARCHAR NOT NULL,
    arch     VARCHAR NOT NULL,
    params   BIGINT NOT NULL,
    flops    BIGINT NOT NULL,
    size_kb  DOUBLE NOT NULL,
    PRIMARY KEY (space, arch)
);

-- One row per (run, architecture, metric). NaN and +/-inf are stored as they are,
-- with a status ('ok', 'nan', 'inf', '-inf', 'singular', 'error', ...).
CREATE TABLE scores (
    run_id    INTEGER NOT NULL,
    arch      VARCHAR NOT NULL,
    metric    VARCHAR NOT NULL,
    position  BIGINT NOT NULL,               -- draw order within the run
    value     DOUBLE,
    status    VARCHAR NOT NULL,
    seconds   DOUBLE NOT NULL,               -- time to compute this value
    PRIMARY KEY (run_id, arch, metric)
);
