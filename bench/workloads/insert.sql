-- single-row INSERT of a new row: ids above the loaded range, drawn from ~9e18 values per tenant,
-- so a primary-key conflict is practically impossible (no ON CONFLICT needed)
\set t random(1, :tenants)
\set i random(1000000, 9000000000000000000)
INSERT INTO events (tenant_id, id, value, payload) VALUES (:t, :i, 1, 'inserted by pgbench');
