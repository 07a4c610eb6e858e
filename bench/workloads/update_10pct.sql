-- latency: multi-shard UPDATE of 10% of the rows (kind = 'k3'); sets touched, which no other workload reads
UPDATE events SET touched = touched + 1 WHERE kind = 'k3';
