-- point SELECT by key
\set t random(1, :tenants)
\set i random(1, :rows_per_tenant)
SELECT * FROM events WHERE tenant_id = :t AND id = :i;
