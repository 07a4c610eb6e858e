-- latency: whole-table aggregate over every shard
SELECT count(*), sum(amount) FROM events;
