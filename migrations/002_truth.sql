-- 002: ground truth (trained accuracies) and the loads that brought it in.
-- Written by `nasfilter truth load|import|sample` (nasfilter.truth); read by `analyze`.

CREATE SEQUENCE truth_loads_seq START 1;

-- One row per load. A later load of the same (space, arch, dataset, split) replaces the
-- truth row, whose load_id then names the newer load.
CREATE TABLE truth_loads (
    load_id           INTEGER PRIMARY KEY DEFAULT nextval('truth_loads_seq'),
    kind              VARCHAR NOT NULL,      -- 'nats_bench' | 'import' | 'sample'
    space             VARCHAR NOT NULL,
    datasets          VARCHAR[] NOT NULL,    -- NATS-Bench dataset names loaded
    source            VARCHAR NOT NULL,      -- e.g. 'NATS-tss-v1_0-3ffb9', 'nas-bench-suite-zero'
    settings          JSON NOT NULL,         -- every parameter of the load (hp, is_random, file, ...)
    rows              BIGINT NOT NULL,       -- truth rows written (inserted or replaced)
    loaded_at         TIMESTAMP NOT NULL,
    nasfilter_version VARCHAR NOT NULL
);

-- The accuracy of one architecture (canonical identity) on one dataset and split.
-- dataset: NATS-Bench's names, 'cifar10-valid', 'cifar10', 'cifar100', 'ImageNet16-120'.
-- accuracy: top-1, percent. bench_params: a count (not millions); bench_flops: a count
-- (not millions); both as the source recorded them, NULL if unknown.
CREATE TABLE truth (
    space            VARCHAR NOT NULL,
    arch             VARCHAR NOT NULL,
    dataset          VARCHAR NOT NULL,
    split            VARCHAR NOT NULL CHECK (split IN ('valid', 'test')),
    accuracy         DOUBLE NOT NULL,
    source           VARCHAR NOT NULL,
    benchmark_index  BIGINT,
    bench_params     DOUBLE,
    bench_flops      DOUBLE,
    load_id          INTEGER NOT NULL,
    PRIMARY KEY (space, arch, dataset, split)
);

-- What truth the database holds: one row per (space, dataset, split, source).
CREATE VIEW truth_summary AS
SELECT space, dataset, split, source, count(*) AS archs,
    round(min(accuracy), 4) AS min_accuracy, round(max(accuracy), 4) AS max_accuracy,
    max(load_id) AS last_load_id
FROM truth
GROUP BY space, dataset, split, source
ORDER BY space, dataset, split, source;
