-- latency: whole-table GROUP BY a non-distribution column (kind, 10 values)
SELECT kind, count(*), avg(amount) FROM events GROUP BY kind ORDER BY kind;
