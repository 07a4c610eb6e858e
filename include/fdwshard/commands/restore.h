/* Restoring pg_dump's coordinator half of distributed tables: local shards' keys and indexes, fdwshard's trigger. */
#pragma once

#include "fdwshard/commands/utility_hook.h"

namespace fdwshard::commands
{

/* True while a dump is restored: check_function_bodies off, as pg_dump's scripts and pg_restore set it. */
bool Restoring(void);

/*
 * Each returns true when it ran the statement natively (no worker touched), false when the
 * statement is not one of pg_dump's for a distributed table (the caller handles it as usual):
 * - ALTER TABLE <local shard> ADD CONSTRAINT <key>_<shardid>: a shard key the catalog names (while
 *   restoring, any constraint: pg_restore -j may run it before the catalog's rows are loaded);
 * - CREATE UNIQUE INDEX <key>_<shardid> ON <local shard>; while restoring, any index of a local
 *   shard, and CREATE INDEX ... ON ONLY <distributed table>;
 * - ALTER INDEX <distributed table's index> ATTACH PARTITION <local shard's index>, which makes the
 *   partitioned index valid once every local shard has its index;
 * - CREATE TRIGGER fdwshard_relocate_row (on a table the catalog does not know, a loud refusal:
 *   the dump had no catalog rows for it).
 * - COPY ... FROM into fdwshard's catalog tables, without their foreign key checks (pg_restore -j
 *   loads them at once).
 */
bool ProcessRestoredCatalogCopy(UtilityCall *call, CopyStmt *stmt);
bool ProcessRestoredShardKey(UtilityCall *call, AlterTableStmt *stmt);
bool ProcessRestoredIndex(UtilityCall *call, IndexStmt *stmt);
bool ProcessAttachShardIndex(UtilityCall *call, AlterTableStmt *stmt);
bool ProcessRestoredTrigger(UtilityCall *call, CreateTrigStmt *stmt);

} // namespace fdwshard::commands
