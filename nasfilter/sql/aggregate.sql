-- Rank aggregates: metrics defined by the ranks of their components within a population
-- (nasfilter.metrics.aggregate; docs/metrics.md, "Aggregates"). nasfilter computes a
-- score run's rank aggregates with rank_aggregate() when the run completes (and again
-- after --resume); the same macros recompute them, or any other rank combination, over
-- any population you choose.
--
-- Not a migration: re-created on every open (see analysis.sql). Every statement must
-- start with `CREATE OR REPLACE MACRO` at the start of a line.
--
-- The rank rule: for a population of n architectures and a component with sign s (+1:
-- larger is better inside the aggregate, -1: smaller), r is the architecture's ascending
-- rank, 1 = worst .. n = best, of s * value: NaN and missing values lowest, then the keys
-- in increasing order (-inf lowest among numbers), tied keys the average of their ranks
-- (scipy.stats.rankdata's default). Then, with weights w:
--   form 'log':  sum over components of w * ln(r / n)       (AZ-NAS: every w = 1)
--   form 'mean': sum over components of w * r / n, / sum of w
-- (the terms summed left to right in the order of the component names)
-- status: 'ok' when every component value is a number (+-inf included), else
-- 'nan component: <names>' (the value is still computed, NaN ranked lowest).

-- rank_aggregate_values(q): the aggregate of every `arch` in the rows of the query string
-- q, which must have the columns arch, component, weight, sign, value and form ('log' or
-- 'mean', the same on every row): one row per (architecture, component). The population
-- is every arch of q; an architecture without a row for some component ranks lowest for
-- it (a missing value). Returns arch, value, status, n (the population size).
CREATE OR REPLACE MACRO rank_aggregate_values(q) AS TABLE
WITH src AS MATERIALIZED (
    SELECT CAST(arch AS VARCHAR) AS arch, CAST(component AS VARCHAR) AS component,
        CAST(weight AS DOUBLE) AS weight, CAST(sign AS INTEGER) AS sign,
        CAST(value AS DOUBLE) AS value, lower(CAST(form AS VARCHAR)) AS form
    FROM query(q)
),
pop AS (SELECT DISTINCT arch FROM src),
comps AS (SELECT DISTINCT component, weight, sign FROM src),
n AS (SELECT (SELECT count(*) FROM pop) AS n, (SELECT any_value(form) FROM src) AS form),
cells AS (
    SELECT p.arch, c.component, c.weight,
        (s.value IS NULL OR isnan(s.value)) AS missing,
        CASE WHEN s.value IS NULL OR isnan(s.value) THEN 0.0 ELSE c.sign * s.value END AS k
    FROM pop p CROSS JOIN comps c
    LEFT JOIN src s ON s.arch = p.arch AND s.component = c.component
),
ranked AS (
    SELECT arch, component, weight, missing,
        rank() OVER w + (count(*) OVER (w RANGE BETWEEN CURRENT ROW AND CURRENT ROW) - 1) / 2.0
            AS r
    FROM cells
    WINDOW w AS (PARTITION BY component ORDER BY (NOT missing), k)
)
SELECT r.arch,
    -- summed left to right in component-name order (list_sum): the same sum, bit for
    -- bit, on every run, and the same as nasfilter.metrics.aggregate.rank_values
    CASE WHEN any_value(n.form) = 'mean'
        THEN list_sum(list(r.weight * r.r / n.n ORDER BY r.component))
            / list_sum(list(r.weight ORDER BY r.component))
        ELSE list_sum(list(r.weight * ln(r.r / n.n) ORDER BY r.component)) END AS value,
    CASE WHEN bool_or(r.missing) THEN
        left('nan component: ' || string_agg(r.component, ', ' ORDER BY r.component)
            FILTER (WHERE r.missing), 200)
        ELSE 'ok' END AS status,
    any_value(n.n) AS n
FROM ranked r CROSS JOIN n
GROUP BY r.arch;

-- nf_rank_inputs(p_run, p_metric): the rows rank_aggregate_values reads for the rank
-- aggregate p_metric of run p_run: every stored value of its components in the run, with
-- the weights, signs and form of the run's own record of the metric
-- (run_metrics.metadata -> 'aggregate'), and each row's position and seconds.
CREATE OR REPLACE MACRO nf_rank_inputs(p_run, p_metric) AS TABLE
WITH def AS (
    SELECT unnest(from_json(json_extract(metadata, '$.aggregate.components'),
            '[{"metric": "VARCHAR", "weight": "DOUBLE", "sign": "INTEGER"}]'),
            recursive := true),
        coalesce(json_extract_string(metadata, '$.aggregate.form'), 'log') AS form
    FROM run_metrics WHERE run_id = p_run AND metric = p_metric
)
SELECT s.arch, s.metric AS component, d.weight, d.sign, s.value, d.form,
    s.position, s.seconds
FROM scores s JOIN def d ON d.metric = s.metric
WHERE s.run_id = p_run;

-- rank_aggregate(p_run, p_metric): the rank aggregate p_metric of score run p_run over
-- the run's architectures (those with a stored value of any of its components). Returns
-- arch, value, status, n, position (the architecture's position in the run) and seconds
-- (the sum of its components' stored seconds): what nasfilter stores in `scores`.
CREATE OR REPLACE MACRO rank_aggregate(p_run, p_metric) AS TABLE
SELECT v.arch, v.value, v.status, v.n, t.position, t.seconds
FROM rank_aggregate_values(format('SELECT * FROM nf_rank_inputs({}, {})', p_run,
    '''' || replace(CAST(p_metric AS VARCHAR), '''', '''''') || '''')) v
JOIN (
    SELECT arch, min(position) AS position, sum(seconds) AS seconds
    FROM nf_rank_inputs(p_run, p_metric)
    GROUP BY arch
) t USING (arch);
