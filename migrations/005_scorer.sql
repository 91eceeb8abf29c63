-- 005: the scorer seam.
-- Spaces without analytic costs store NULL reference params/flops; runs record where they
-- came from; explicit lists of architectures are recorded with their run; the time of
-- building a network and of the shared forward pass is stored once per architecture;
-- run_metrics keeps each metric's whole metadata; searches record their tie-break rule.

ALTER TABLE architectures ALTER COLUMN params DROP NOT NULL;
ALTER TABLE architectures ALTER COLUMN flops DROP NOT NULL;
ALTER TABLE architectures ALTER COLUMN size_kb DROP NOT NULL;

-- origin: 'score' (a user's score run), 'search' (scored for a search),
-- 'reproduce' (scored by `nasfilter reproduce`); parent_run: the search that made it.
ALTER TABLE runs ADD COLUMN origin VARCHAR;
ALTER TABLE runs ADD COLUMN parent_run INTEGER;
UPDATE runs SET origin = CASE
    WHEN kind <> 'score' THEN kind
    WHEN coalesce(json_extract(settings, '$.explicit_archs')::VARCHAR, 'false') = 'true' THEN 'search'
    ELSE 'score' END;

-- The whole metadata of each metric as the run used it (needs, figure, source, ...).
ALTER TABLE run_metrics ADD COLUMN metadata JSON;

-- The architectures of a run that scores an explicit list (`score --archs`, searches),
-- in order: `--resume` scores exactly these.
CREATE TABLE run_archs (
    run_id    INTEGER NOT NULL,
    position  BIGINT NOT NULL,
    arch      VARCHAR NOT NULL,
    PRIMARY KEY (run_id, position)
);

-- Per (run, architecture): seconds to build the network and of the shared no-grad forward
-- pass. scores.seconds is each metric's own time; a metric's standalone time adds these
-- (see the view metric_seconds).
CREATE TABLE arch_timings (
    run_id          INTEGER NOT NULL,
    arch            VARCHAR NOT NULL,
    build_seconds   DOUBLE,
    pass_seconds    DOUBLE,
    PRIMARY KEY (run_id, arch)
);

ALTER TABLE searches ADD COLUMN tie_break VARCHAR;
ALTER TABLE searches ALTER COLUMN population_size DROP NOT NULL;  -- sampling-only spaces
UPDATE searches SET tie_break = 'smallest';

-- Repeats are numbered from 1, as every command prints them.
UPDATE search_candidates SET repeat = repeat + 1;
UPDATE search_choices SET repeat = repeat + 1;
