-- Analysis macros: how well each metric of a run predicts accuracy and size.
-- Used by `nasfilter analyze` (nasfilter.analysis.correlation) and callable from
-- `nasfilter sql`, the duckdb CLI and Python; see docs/analyze.md.
--
-- Not a migration: nasfilter.store runs this file (every statement CREATE OR REPLACE)
-- on every writable open, after the migrations, so a fix here reaches every database
-- without a migration. A read-only open creates the same macros as TEMP macros on its
-- own connection (they shadow the stored ones), so it never uses stale definitions.
-- Every statement must start with `CREATE OR REPLACE MACRO` at the start of a line.
--
-- Arguments are constants: a run id (integer), a NATS-Bench dataset name (any case)
-- and a split ('valid' or 'test').

-- A SQL string literal for s: used to pass arguments into query() strings.
CREATE OR REPLACE MACRO nf_sql_literal(s) AS '''' || replace(CAST(s AS VARCHAR), '''', '''''') || '''';

-- rank_correlations(q): Kendall tau-b and Spearman rho for every (x_name, y_name) group
-- of the rows returned by the SQL query string q, which must have the columns
-- x_name, y_name, x, y. Rows where x or y is NULL, NaN or infinite are left out.
--
-- Kendall tau-b = (nc - nd) / sqrt((n0 - n1) (n0 - n2)) with n0 = n(n-1)/2 and
-- n1, n2, n3 the pairs tied in x, in y, and in both. With the rows ordered by (x, y),
-- D = sum over rows of #(earlier rows with a smaller y) is a framed rank (a merge-sort
-- tree in DuckDB: O(n log n)), and nc - nd = 2 D - n0 - n1 + n2 + n3.
-- Spearman rho is the Pearson correlation of the average ranks (ties get the mean rank).
-- Both equal scipy.stats.kendalltau (variant 'b') and scipy.stats.spearmanr.
CREATE OR REPLACE MACRO rank_correlations(q) AS TABLE
WITH src AS MATERIALIZED (
    SELECT CAST(x_name AS VARCHAR) AS x_name, CAST(y_name AS VARCHAR) AS y_name,
        CAST(x AS DOUBLE) AS x, CAST(y AS DOUBLE) AS y
    FROM query(q)
    WHERE x IS NOT NULL AND y IS NOT NULL
        AND isfinite(CAST(x AS DOUBLE)) AND isfinite(CAST(y AS DOUBLE))
),
ranked AS (
    SELECT x_name, y_name, x, y,
        -- three sorts: by x, by y, by (x, y); peer-group frames give the tie counts
        count(*) OVER (PARTITION BY x_name, y_name ORDER BY x
            RANGE BETWEEN CURRENT ROW AND CURRENT ROW) AS cx,
        rank() OVER (PARTITION BY x_name, y_name ORDER BY x) AS rx,
        count(*) OVER (PARTITION BY x_name, y_name ORDER BY y
            RANGE BETWEEN CURRENT ROW AND CURRENT ROW) AS cy,
        rank() OVER (PARTITION BY x_name, y_name ORDER BY y) AS ry,
        count(*) OVER (PARTITION BY x_name, y_name ORDER BY x, y
            RANGE BETWEEN CURRENT ROW AND CURRENT ROW) AS cxy,
        rank(ORDER BY y) OVER (PARTITION BY x_name, y_name ORDER BY x, y
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - 1 AS below
    FROM src
),
agg AS (
    SELECT x_name, y_name,
        count(*) AS n,
        count(DISTINCT x) AS x_distinct,
        count(DISTINCT y) AS y_distinct,
        CAST(sum(cx - 1) // 2 AS BIGINT) AS n1,
        CAST(sum(cy - 1) // 2 AS BIGINT) AS n2,
        CAST(sum(cxy - 1) // 2 AS BIGINT) AS n3,
        CAST(sum(below) AS BIGINT) AS d,
        corr(rx + (cx - 1) / 2.0, ry + (cy - 1) / 2.0) AS rho
    FROM ranked
    GROUP BY x_name, y_name
)
SELECT x_name, y_name, n, x_distinct, y_distinct,
    n1 AS x_tied_pairs, n2 AS y_tied_pairs, n3 AS xy_tied_pairs,
    2 * d - n * (n - 1) // 2 - n1 + n2 + n3 AS concordant_minus_discordant,
    CASE WHEN n * (n - 1) // 2 - n1 > 0 AND n * (n - 1) // 2 - n2 > 0 THEN
        CAST(2 * d - n * (n - 1) // 2 - n1 + n2 + n3 AS DOUBLE)
            / sqrt(CAST(n * (n - 1) // 2 - n1 AS DOUBLE) * CAST(n * (n - 1) // 2 - n2 AS DOUBLE))
    END AS kendall_tau_b,
    CASE WHEN x_distinct > 1 AND y_distinct > 1 THEN rho END AS spearman_rho
FROM agg;

-- For each (dataset, split): how many architectures of run p_run have truth.
CREATE OR REPLACE MACRO truth_coverage(p_run) AS TABLE
SELECT t.dataset, t.split, count(*) AS archs, max(t.accuracy) AS best_accuracy
FROM (SELECT DISTINCT arch FROM scores WHERE run_id = p_run) a
JOIN runs r ON r.run_id = p_run
JOIN truth t ON t.space = r.space AND t.arch = a.arch
GROUP BY t.dataset, t.split
ORDER BY t.dataset, t.split;

-- One row per (architecture, metric) of run p_run that has truth for the dataset and
-- split: the metric value and its status as stored, whether it is usable (finite),
-- the true accuracy (percent) and the size (the run's own `params` score).
CREATE OR REPLACE MACRO analysis_points(p_run, p_dataset, p_split) AS TABLE
SELECT s.run_id, r.space, s.arch, s.metric, m.higher_is_better, s.value, s.status,
    coalesce(isfinite(s.value), false) AS usable,
    t.dataset, t.split, t.accuracy, z.value AS size
FROM scores s
JOIN runs r ON r.run_id = s.run_id
JOIN run_metrics m ON m.run_id = s.run_id AND m.metric = s.metric
JOIN truth t ON t.space = r.space AND t.arch = s.arch
    AND lower(t.dataset) = lower(p_dataset) AND t.split = lower(p_split)
LEFT JOIN scores z ON z.run_id = s.run_id AND z.arch = s.arch AND z.metric = 'params'
    AND coalesce(isfinite(z.value), false)
WHERE s.run_id = p_run;

-- Per metric of the run: architectures with truth, how many are usable (finite value),
-- how many were excluded (NaN, +-inf or NULL: never replaced), distinct usable values
-- and ties (usable values equal to another one: n - distinct_values).
CREATE OR REPLACE MACRO analysis_counts(p_run, p_dataset, p_split) AS TABLE
SELECT m.metric, m.higher_is_better,
    count(p.arch) AS with_truth,
    count(p.arch) FILTER (WHERE p.usable) AS n,
    count(p.arch) FILTER (WHERE NOT p.usable) AS excluded,
    count(DISTINCT p.value) FILTER (WHERE p.usable) AS distinct_values,
    count(p.arch) FILTER (WHERE p.usable)
        - count(DISTINCT p.value) FILTER (WHERE p.usable) AS ties
FROM run_metrics m
LEFT JOIN analysis_points(p_run, p_dataset, p_split) p ON p.metric = m.metric
WHERE m.run_id = p_run
GROUP BY m.metric, m.higher_is_better;

-- The direction of a metric of run p_run: +1 if higher is better, -1 if lower is.
CREATE OR REPLACE MACRO nf_direction(p_run, p_metric) AS (
    SELECT CASE WHEN higher_is_better THEN 1 ELSE -1 END
    FROM run_metrics WHERE run_id = p_run AND metric = p_metric);

-- Correlations come raw (kendall_tau_b, spearman_rho: of the metric's value) and with
-- each metric's direction applied (kendall_tau_b_directed, spearman_rho_directed: of the
-- value times +1 or -1, so that larger means preferred by the metric). A lower-is-better
-- metric such as params then has a negative directed tau against size: it prefers small
-- networks, as its top-k shows. `nasfilter analyze` prints the directed ones.

-- Each metric against accuracy (b_kind 'accuracy') and against size (b_kind 'size',
-- the run's params), over the architectures with truth and a finite value.
CREATE OR REPLACE MACRO analysis_vs_truth(p_run, p_dataset, p_split) AS TABLE
SELECT 'metric' AS a_kind, c.x_name AS a, 'accuracy' AS b_kind, 'accuracy' AS b,
    c.* EXCLUDE (x_name, y_name),
    c.kendall_tau_b * nf_direction(p_run, c.x_name) AS kendall_tau_b_directed,
    c.spearman_rho * nf_direction(p_run, c.x_name) AS spearman_rho_directed
FROM rank_correlations(format(
    'SELECT metric AS x_name, ''accuracy'' AS y_name, value AS x, accuracy AS y ' ||
    'FROM analysis_points({}, {}, {}) WHERE usable',
    p_run, nf_sql_literal(p_dataset), nf_sql_literal(p_split))) c
UNION ALL
SELECT 'metric' AS a_kind, c.x_name AS a, 'size' AS b_kind, 'size' AS b,
    c.* EXCLUDE (x_name, y_name),
    c.kendall_tau_b * nf_direction(p_run, c.x_name) AS kendall_tau_b_directed,
    c.spearman_rho * nf_direction(p_run, c.x_name) AS spearman_rho_directed
FROM rank_correlations(format(
    'SELECT metric AS x_name, ''size'' AS y_name, value AS x, size AS y ' ||
    'FROM analysis_points({}, {}, {}) WHERE usable AND size IS NOT NULL',
    p_run, nf_sql_literal(p_dataset), nf_sql_literal(p_split))) c;

-- Every pair of metrics (a < b), and accuracy against size, over the same architectures.
CREATE OR REPLACE MACRO analysis_between(p_run, p_dataset, p_split) AS TABLE
SELECT 'metric' AS a_kind, c.x_name AS a, 'metric' AS b_kind, c.y_name AS b,
    c.* EXCLUDE (x_name, y_name),
    c.kendall_tau_b * nf_direction(p_run, c.x_name) * nf_direction(p_run, c.y_name)
        AS kendall_tau_b_directed,
    c.spearman_rho * nf_direction(p_run, c.x_name) * nf_direction(p_run, c.y_name)
        AS spearman_rho_directed
FROM rank_correlations(format(
    'SELECT p.metric AS x_name, q.metric AS y_name, p.value AS x, q.value AS y ' ||
    'FROM analysis_points({0}, {1}, {2}) p JOIN analysis_points({0}, {1}, {2}) q ' ||
    'ON p.arch = q.arch AND p.metric < q.metric WHERE p.usable AND q.usable',
    p_run, nf_sql_literal(p_dataset), nf_sql_literal(p_split))) c
UNION ALL
SELECT 'accuracy' AS a_kind, 'accuracy' AS a, 'size' AS b_kind, 'size' AS b,
    c.* EXCLUDE (x_name, y_name),
    c.kendall_tau_b AS kendall_tau_b_directed, c.spearman_rho AS spearman_rho_directed
FROM rank_correlations(format(
    'SELECT DISTINCT ''accuracy'' AS x_name, ''size'' AS y_name, arch, accuracy AS x, ' ||
    'size AS y FROM analysis_points({}, {}, {}) WHERE size IS NOT NULL',
    p_run, nf_sql_literal(p_dataset), nf_sql_literal(p_split))) c;

-- All of the above: metric/accuracy, metric/size, metric/metric and accuracy/size.
CREATE OR REPLACE MACRO analysis_correlations(p_run, p_dataset, p_split) AS TABLE
SELECT * FROM analysis_vs_truth(p_run, p_dataset, p_split)
UNION ALL
SELECT * FROM analysis_between(p_run, p_dataset, p_split);

-- Top-k by each metric (k = 1, 10, 100; all usable architectures if fewer than k), best
-- first in the metric's own direction. Ties are the normal case (relu_count takes 7
-- values over NATS-TSS), so no member of the tie group at the cut is picked: every
-- figure is the expectation over a uniformly random choice of the k_used - above
-- members the k take from that group (tie_take of tie_n), and the group is described.
--   above            architectures strictly better than the cut value (all in the k)
--   tie_n, tie_take  size of the tie group at the cut, and how many of it the k take
--   cut_value        the metric value of that group
--   tie_mean_acc, tie_min_acc, tie_max_acc   accuracy over the whole tie group
--   mean_accuracy    (sum over above + tie_take * tie_mean_acc) / k_used: the expected
--                    mean accuracy of the k
--   best_accuracy    the expected best accuracy of the k: with the group's accuracies
--                    sorted x_1 <= ... <= x_g and t = tie_take, the best of a random
--                    t-subset is x_i with probability C(i-1, t-1) / C(g, t);
--                    E[max(best above, that)] (exact when there is no tie: g = t)
--   best_scored, gap best accuracy over every architecture of the run with truth, and
--                    best_scored - best_accuracy
CREATE OR REPLACE MACRO analysis_topk(p_run, p_dataset, p_split) AS TABLE
WITH pts AS (SELECT * FROM analysis_points(p_run, p_dataset, p_split)),
best AS (SELECT max(accuracy) AS best_scored FROM pts),
ranked AS (
    SELECT metric, arch, accuracy, value,
        -- 1-based position of the first member of the value's tie group
        rank() OVER (
            PARTITION BY metric
            ORDER BY CASE WHEN higher_is_better THEN value END DESC,
                CASE WHEN NOT higher_is_better THEN value END ASC) AS first_pos,
        count(*) OVER (PARTITION BY metric, value) AS group_n,
        count(*) OVER (PARTITION BY metric) AS n
    FROM pts WHERE usable
),
cut AS (
    SELECT DISTINCT r.metric, k.k, least(k.k, r.n) AS k_used, r.value AS cut_value,
        r.first_pos - 1 AS above, r.group_n AS tie_n,
        least(k.k, r.n) - (r.first_pos - 1) AS tie_take
    FROM ranked r
    JOIN (VALUES (1), (10), (100)) k(k)
        ON r.first_pos <= least(k.k, r.n) AND least(k.k, r.n) < r.first_pos + r.group_n
),
above AS (
    SELECT c.metric, c.k, sum(r.accuracy) AS acc_sum, max(r.accuracy) AS acc_max
    FROM cut c JOIN ranked r ON r.metric = c.metric AND r.first_pos <= c.above
    GROUP BY c.metric, c.k
),
tie AS (
    SELECT c.metric, c.k, r.accuracy,
        row_number() OVER (PARTITION BY c.metric, c.k ORDER BY r.accuracy) AS i
    FROM cut c JOIN ranked r ON r.metric = c.metric AND r.value = c.cut_value
),
tie_stats AS (
    SELECT t.metric, t.k, avg(t.accuracy) AS tie_mean_acc, min(t.accuracy) AS tie_min_acc,
        max(t.accuracy) AS tie_max_acc,
        -- sum over i >= t of max(best above, x_i) * P_i, P_i = C(i-1, t-1) / C(g, t)
        -- (in logs), divided by the sum of the P_i (1 up to rounding)
        sum(greatest(t.accuracy, coalesce(a.acc_max, t.accuracy)) * t.p)
            / sum(t.p) AS expected_best
    FROM (
        SELECT t.*, CASE WHEN t.i >= c.tie_take THEN exp(
                lgamma(t.i) - lgamma(c.tie_take) - lgamma(t.i - c.tie_take + 1)
                - lgamma(c.tie_n + 1) + lgamma(c.tie_take + 1)
                + lgamma(c.tie_n - c.tie_take + 1)) ELSE 0 END AS p
        FROM tie t JOIN cut c ON c.metric = t.metric AND c.k = t.k
    ) t
    JOIN cut c ON c.metric = t.metric AND c.k = t.k
    LEFT JOIN above a ON a.metric = t.metric AND a.k = t.k
    GROUP BY t.metric, t.k
)
SELECT c.metric, c.k, c.k_used,
    (coalesce(a.acc_sum, 0) + c.tie_take * s.tie_mean_acc) / c.k_used AS mean_accuracy,
    CASE WHEN c.tie_take = c.tie_n THEN greatest(s.tie_max_acc, coalesce(a.acc_max, s.tie_max_acc))
        ELSE s.expected_best END AS best_accuracy,
    b.best_scored,
    b.best_scored - CASE WHEN c.tie_take = c.tie_n
        THEN greatest(s.tie_max_acc, coalesce(a.acc_max, s.tie_max_acc))
        ELSE s.expected_best END AS gap,
    c.above, c.tie_n, c.tie_take, c.cut_value,
    s.tie_mean_acc, s.tie_min_acc, s.tie_max_acc
FROM cut c
JOIN tie_stats s ON s.metric = c.metric AND s.k = c.k
LEFT JOIN above a ON a.metric = c.metric AND a.k = c.k
CROSS JOIN best b
ORDER BY c.metric, c.k;

-- One row per metric of the run: counts, tau-b and rho against accuracy and size (raw
-- and with the direction applied), and the top-k columns of analysis_topk for k = 1, 10,
-- 100 (top{k}_mean_acc, top{k}_best_acc, top{k}_gap, and the tie group at the cut:
-- top{k}_tie_n, top{k}_tie_take, top{k}_tie_min_acc, top{k}_tie_max_acc).
CREATE OR REPLACE MACRO analysis_summary(p_run, p_dataset, p_split) AS TABLE
WITH c AS (SELECT * FROM analysis_vs_truth(p_run, p_dataset, p_split)),
t AS (SELECT * FROM analysis_topk(p_run, p_dataset, p_split)),
b AS (SELECT max(accuracy) AS best_scored FROM analysis_points(p_run, p_dataset, p_split))
SELECT n.metric, n.higher_is_better, n.with_truth, n.n, n.excluded, n.distinct_values, n.ties,
    ca.kendall_tau_b AS kendall_tau_acc, ca.spearman_rho AS spearman_acc,
    ca.kendall_tau_b_directed AS kendall_tau_acc_directed,
    ca.spearman_rho_directed AS spearman_acc_directed,
    coalesce(cs.n, 0) AS n_size,
    cs.kendall_tau_b AS kendall_tau_size, cs.spearman_rho AS spearman_size,
    cs.kendall_tau_b_directed AS kendall_tau_size_directed,
    cs.spearman_rho_directed AS spearman_size_directed,
    t1.mean_accuracy AS top1_mean_acc, t1.best_accuracy AS top1_best_acc, t1.gap AS top1_gap,
    t1.tie_n AS top1_tie_n, t1.tie_take AS top1_tie_take,
    t1.tie_min_acc AS top1_tie_min_acc, t1.tie_max_acc AS top1_tie_max_acc,
    t10.mean_accuracy AS top10_mean_acc, t10.best_accuracy AS top10_best_acc,
    t10.gap AS top10_gap,
    t10.tie_n AS top10_tie_n, t10.tie_take AS top10_tie_take,
    t10.tie_min_acc AS top10_tie_min_acc, t10.tie_max_acc AS top10_tie_max_acc,
    t100.mean_accuracy AS top100_mean_acc, t100.best_accuracy AS top100_best_acc,
    t100.gap AS top100_gap,
    t100.tie_n AS top100_tie_n, t100.tie_take AS top100_tie_take,
    t100.tie_min_acc AS top100_tie_min_acc, t100.tie_max_acc AS top100_tie_max_acc,
    b.best_scored
FROM analysis_counts(p_run, p_dataset, p_split) n
CROSS JOIN b
LEFT JOIN c ca ON ca.a = n.metric AND ca.b_kind = 'accuracy'
LEFT JOIN c cs ON cs.a = n.metric AND cs.b_kind = 'size'
LEFT JOIN t t1 ON t1.metric = n.metric AND t1.k = 1
LEFT JOIN t t10 ON t10.metric = n.metric AND t10.k = 10
LEFT JOIN t t100 ON t100.metric = n.metric AND t100.k = 100
ORDER BY n.metric;
