/* The per-shard parts of a multi-shard statement: which shards it needs, and its query against one shard. */
#pragma once

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/executor/shard_tasks.h"
#include "fdwshard/pg.h"
#include "fdwshard/planner/ship.h"

namespace fdwshard::planner
{

/*
 * The hashes of the non-null elements of array once folded to a constant (IN lists are arrays
 * of unevaluated casts), each hashed as its element type under collation; false when array is
 * no constant or the null array. palloc'd; *count may be 0.
 */
bool ConstantArrayHashes(Node *array, Oid collation, int32 **hashes, int *count);

/*
 * Which shards of table (query's range table entry rti) can hold rows query reads or writes: a
 * top-level "dist_col = constant", "dist_col IN (constants)" or "= ANY (constant array)" keeps
 * the shards of those values; otherwise every shard. palloc'd, by shard index.
 */
bool *ShardsToKeep(Query *query, const catalog::CachedTable *table, Index rti = 1);

/* Whether query uses a system column or whole-row reference: those mean something else on a shard. */
bool ReferencesSystemColumn(Query *query);

/* Whether a shard kept (ShardsToKeep) is a foreign shard: else there is nothing to send. */
bool KeepsForeignShard(const catalog::CachedTable *table, const bool *keep);

/* The per-shard tasks of a multi-shard statement, as the planner collects them. */
struct ShardTaskList
{
	executor::ShardTask *tasks;
	int task_count;
	ship::ShippedQuery params; /* the foreign shards' statements' parameters, the same for each */
	List *shard_rtes;          /* the shards, for the plan's range table: locked again when a cached plan is reused */
};

/* An empty list for up to table's shard count of tasks. */
void InitShardTaskList(ShardTaskList *list, const catalog::CachedTable *table);

/*
 * Points shard_query's range table entry rti (a distributed table; shard_query the task's own
 * copy, changed in place) at shard, locked in lockmode as the distributed table is, and notes
 * the shard for the plan's range table. Permissions stay checked on the distributed table, so
 * the shard needs none.
 */
void PointQueryAtShard(ShardTaskList *list, Query *shard_query, Index rti, const catalog::CachedShard *shard,
                       LOCKMODE lockmode);

/*
 * Adds the task of shard (locked in lockmode, as the distributed table is): *shard_query is a
 * copy of query (rti its distributed table) against the shard (PointQueryAtShard), to be
 * shipped or planned into the task; further tables of a join are pointed at their shards with
 * PointQueryAtShard.
 */
executor::ShardTask *AddShardTask(ShardTaskList *list, Query *query, Index rti, const catalog::CachedShard *shard,
                                  LOCKMODE lockmode, Query **shard_query);

/*
 * task's SQL: shard_query deparsed for task's (foreign) shard. *params, zeroed by the caller,
 * gets the first shard's parameters, which every shard's statement shares. False when
 * shard_query cannot be shipped. shard_relids: the shards shard_query reads (NIL: task's alone).
 */
bool ShipShardTask(Query *shard_query, executor::ShardTask *task, ship::ShippedQuery *params, List *shard_relids = NIL);

} // namespace fdwshard::planner
