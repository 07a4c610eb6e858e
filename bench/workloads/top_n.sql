-- latency: ORDER BY ... LIMIT across every shard (the 10 largest amounts; ties broken by key)
SELECT tenant_id, id, amount FROM events ORDER BY amount DESC, tenant_id, id LIMIT 10;
