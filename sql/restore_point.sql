-- fdwshard_create_restore_point: one named restore point on every node (see also
-- test/fault/cluster_restore.sh, which recovers a whole cluster to one).
SELECT nodeid, lsn IS NOT NULL AS made FROM fdwshard_create_restore_point('regress ''rp'' "1"') ORDER BY nodeid;
SELECT count(*) AS nodes FROM fdwshard.nodes;
-- Refusals: a name PostgreSQL refuses, NULL, a role that is not superuser.
SELECT * FROM fdwshard_create_restore_point(repeat('x', 64));
SELECT * FROM fdwshard_create_restore_point(NULL);
CREATE ROLE rp_stranger;
SET ROLE rp_stranger;
SELECT * FROM fdwshard_create_restore_point('nope');
RESET ROLE;
GRANT EXECUTE ON FUNCTION fdwshard_create_restore_point(text) TO rp_stranger;
SET ROLE rp_stranger;
SELECT * FROM fdwshard_create_restore_point('nope');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION fdwshard_create_restore_point(text) FROM rp_stranger;
DROP ROLE rp_stranger;
