-- per-tenant aggregate (one tenant's ~100 rows)
\set t random(1, :tenants)
SELECT count(*), sum(value) FROM events WHERE tenant_id = :t;
