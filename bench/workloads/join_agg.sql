-- latency: co-located join on the distribution column (events JOIN tenants) + aggregate
SELECT t.plan, count(*), sum(e.amount) FROM events e JOIN tenants t ON t.tenant_id = e.tenant_id GROUP BY t.plan ORDER BY t.plan;
