-- 004: searches (nasfilter.search): what was searched, every candidate, every choice.
-- A search is a run of kind 'search' in `runs` (settings: every option). The scores its
-- candidates were given live in `scores`, under the score runs named in score_run_id.
-- Every number `nasfilter search` prints can be recomputed from these tables; see
-- docs/search.md.

-- One row per search run.
CREATE TABLE searches (
    run_id           INTEGER PRIMARY KEY,   -- runs.run_id (kind 'search')
    algo             VARCHAR NOT NULL,      -- 'random' | 'two-stage' | 'evolution'
    metric           VARCHAR NOT NULL,      -- the metric the choice is made by
    filter_metric    VARCHAR,               -- two-stage: the first-stage metric
    higher_is_better BOOLEAN NOT NULL,      -- of metric
    rank_by          VARCHAR NOT NULL,      -- metric, or <metric>_<penalty> when penalized
    penalty          VARCHAR,               -- 'gdf' | 'hsdf' | 'rdf' | NULL
    mu               DOUBLE,                -- MB, with penalty
    sigma            DOUBLE,                -- MB, with penalty
    n                BIGINT NOT NULL,       -- evaluations per repeat (first stage for two-stage)
    keep             BIGINT,                -- two-stage: architectures kept for the second stage
    repeats          INTEGER NOT NULL,
    seed             BIGINT NOT NULL,       -- repeat r samples with seed + r
    score_seed       BIGINT NOT NULL,       -- seed of every score run (inputs, weights)
    population       VARCHAR NOT NULL,      -- 'space' | 'truth'
    population_size  BIGINT NOT NULL,
    dataset          VARCHAR,               -- truth dataset for accuracy, NULL if none
    split            VARCHAR                -- 'valid' | 'test'
);

-- Every evaluation a search made: one row per (search, repeat, stage, step).
-- stage: 'final' (the metric the choice is made by) or 'filter' (two-stage's first stage).
-- source: 'scored'  = computed by a score run this repeat started,
--         'stored'  = taken from a score run made earlier with the same settings (reuse),
--         'repeat'  = an architecture this repeat had already evaluated (evolution).
-- value/status: the score as stored in `scores` (run score_run_id); rank_value: value, or
-- value x penalty(size_kb / 1000) with a penalty; seconds: the stored time of that score.
CREATE TABLE search_candidates (
    run_id        INTEGER NOT NULL,
    repeat        INTEGER NOT NULL,
    stage         VARCHAR NOT NULL,
    step          BIGINT NOT NULL,          -- evaluation order within the stage
    arch          VARCHAR NOT NULL,
    parent        VARCHAR,                  -- evolution: the architecture it mutates
    metric        VARCHAR NOT NULL,
    score_run_id  INTEGER NOT NULL,
    value         DOUBLE,
    status        VARCHAR NOT NULL,
    rank_value    DOUBLE,
    params        BIGINT,
    size_kb       DOUBLE,
    seconds       DOUBLE NOT NULL,
    source        VARCHAR NOT NULL,
    PRIMARY KEY (run_id, repeat, stage, step)
);

-- The choice of each repeat.
-- seconds = measured_seconds + summed_seconds: measured_seconds is the wall time of the
-- score runs this repeat executed (engine.execute); summed_seconds the sum of the stored
-- per-architecture seconds of the values it reused ('stored' candidates).
-- time_source: 'measured' (nothing reused), 'summed' (nothing scored), 'mixed'.
-- score_seconds: sum of the stored seconds of every 'scored' or 'stored' candidate.
CREATE TABLE search_choices (
    run_id           INTEGER NOT NULL,
    repeat           INTEGER NOT NULL,
    arch             VARCHAR NOT NULL,
    metric           VARCHAR NOT NULL,
    value            DOUBLE,
    rank_value       DOUBLE,
    params           BIGINT,
    size_kb          DOUBLE,
    accuracy         DOUBLE,               -- percent; NULL without truth for the dataset
    seconds          DOUBLE NOT NULL,
    measured_seconds DOUBLE NOT NULL,
    summed_seconds   DOUBLE NOT NULL,
    score_seconds    DOUBLE NOT NULL,
    time_source      VARCHAR NOT NULL,
    evaluations      BIGINT NOT NULL,      -- candidate rows of the repeat, all stages
    scored           BIGINT NOT NULL,      -- of which source = 'scored'
    stored           BIGINT NOT NULL,      -- of which source = 'stored'
    PRIMARY KEY (run_id, repeat)
);
