-- UPDATE one row by key
\set t random(1, :tenants)
\set i random(1, :rows_per_tenant)
UPDATE events SET value = value + 1 WHERE tenant_id = :t AND id = :i;
