-- 006: what benchmarks record beyond one accuracy per (arch, dataset, split).
-- bench_hash: the benchmark's own key of the architecture (NAS-Bench-101's module hash);
-- epochs: the training budget the accuracy is for; runs: how many training runs the value
-- averages; train_seconds: the benchmark's mean training time of those runs.
ALTER TABLE truth ADD COLUMN bench_hash VARCHAR;
ALTER TABLE truth ADD COLUMN epochs INTEGER;
ALTER TABLE truth ADD COLUMN runs INTEGER;
ALTER TABLE truth ADD COLUMN train_seconds DOUBLE;

-- Every training run behind a truth value (NAS-Bench-101: three per cell and budget),
-- final and half-way accuracies in percent, NULL where the benchmark has none.
CREATE TABLE truth_runs (
    space                   VARCHAR NOT NULL,
    arch                    VARCHAR NOT NULL,
    dataset                 VARCHAR NOT NULL,
    epochs                  INTEGER NOT NULL,
    run                     INTEGER NOT NULL,      -- 0, 1, 2
    valid_accuracy          DOUBLE,
    test_accuracy           DOUBLE,
    train_accuracy          DOUBLE,
    train_seconds           DOUBLE,
    halfway_valid_accuracy  DOUBLE,
    halfway_test_accuracy   DOUBLE,
    load_id                 INTEGER NOT NULL,
    PRIMARY KEY (space, arch, dataset, epochs, run)
);
