-- latency: GROUP BY a non-distribution column with aggregates split into sums (variance, stddev, bool_or)
SELECT kind, stddev(amount), var_pop(amount), bool_or(amount > 990) FROM events GROUP BY kind ORDER BY kind;
