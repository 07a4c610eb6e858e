/* ON CONFLICT ON CONSTRAINT on distributed tables: the shard keys' placeholders and the arbiter of each shard. */
#pragma once

#include "fdwshard/catalog/metadata_cache.h"

namespace fdwshard::commands
{

/*
 * A PRIMARY KEY or UNIQUE shard key named N lives only on the shards (N_<shardid> each). So that
 * parse analysis of "ON CONFLICT ON CONSTRAINT N" finds N on the distributed table, the table also
 * has a placeholder: "N CHECK (fdwshard_shard_key(<key columns>))", always true, never sent to a
 * worker, renamed and dropped with the key. PostgreSQL copies it to every shard relation of the
 * coordinator (local shards evaluate it, foreign ones do not).
 */

/* True when the constraint constraint_oid is a shard key's placeholder. */
bool IsShardKeyPlaceholder(Oid constraint_oid);

/* Names of the CHECK constraints of relid that are placeholders (placeholders), or that are not. */
List *CheckConstraintNames(Oid relid, bool placeholders);

/*
 * Gives the distributed table qualified_table (quoted) the placeholder of its PRIMARY KEY or UNIQUE
 * key name on columns (String column names, in key order), before the shards get the key: a CHECK
 * constraint of that name fails as on a plain table. Does nothing while the extension's SQL is
 * older than 0.3 (ALTER EXTENSION fdwshard UPDATE adds the missing ones).
 */
void AddShardKeyPlaceholder(const char *qualified_table, const char *name, List *columns);

/* Names of the columns of constraint constraint_oid, in key order (a String list). */
List *ConstraintColumns(Oid constraint_oid);

/*
 * Points the ON CONFLICT ON CONSTRAINT arbiter of shard_query, an INSERT into a distributed table
 * run against one of its shards, at that shard's own key. Call it on each shard's copy of the
 * statement after pointing its target at the shard (or before, if the shard's columns have the
 * table's attribute numbers) and before planning or deparsing it. No catalog query (metadata
 * cache and syscache only). It changes shard_query->onConflict only:
 *   - local shard: onConflict->constraint becomes the shard's constraint N_<shardid>, which the
 *     planner then finds among the shard table's indexes;
 *   - foreign shard: the arbiter becomes the key's columns (arbiterElems, constraint cleared;
 *     Vars of the target relation as it is then, the table or the shard), so the deparsed
 *     statement reads "ON CONFLICT (columns)" and the worker infers its shard's key.
 * Does nothing when the statement has no ON CONSTRAINT, or its constraint is not on a distributed
 * table (already pointed at a shard: calling it twice is harmless). ON CONSTRAINT naming anything
 * but a PRIMARY KEY or UNIQUE shard key (a CHECK constraint) fails as on a plain table: 42809.
 */
void PointArbiterAtShard(Query *shard_query, const catalog::CachedShard *shard);

/*
 * For a statement planned the ordinary way (over the partitioned table, not routed to shards):
 * refuses an INSERT into a distributed table whose ON CONFLICT ON CONSTRAINT names a shard key,
 * which only a statement against one shard can use, instead of PostgreSQL's misleading "no
 * associated index" error about the placeholder.
 */
void RefuseUnroutedArbiter(Query *query);

} // namespace fdwshard::commands
