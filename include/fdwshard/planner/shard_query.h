/* The per-shard parts of a multi-shard statement: which shards it needs, and its query against one shard. */
#pragma once

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/executor/partial_aggregate.h"
#include "fdwshard/executor/shard_tasks.h"
#include "fdwshard/pg.h"
#include "fdwshard/planner/ship.h"

namespace fdwshard::core
{
struct NamePlace;
}

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
	/*
	 * The first foreign shard's statement and its shards' names, from which the others' are
	 * made by replacing the names once a second real deparse matched (ShipOrPlanShardTask).
	 */
	char *model_sql;
	List *model_names;
	int model_state;               /* 0: none yet, 1: a model, 2: checked, -1: every shard deparsed */
	core::NamePlace *model_places; /* once checked: where model_sql's names are (core::FindNames) */
	int model_place_count;
};

/*
 * Points rte (a distributed table's entry, changed in place) at shard: its relid and kind, no
 * inheritance, and no permissions of its own (they are checked on the distributed table).
 */
void PointRteAtShard(RangeTblEntry *rte, const catalog::CachedShard *shard);

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

/* The names of relids as the deparser prints them (the unqualified part), for ReplaceShardNames. */
List *QuotedNames(List *relids);

/*
 * model (SQL text built by the deparser or with quote_identifier) with every name of from
 * (QuotedNames) replaced by the name at the same position of to (core::ReplaceNames).
 */
char *ReplaceShardNames(const char *model, List *from, List *to);

/*
 * task's work: shard_query (against task's shard; shard_relids, what it reads) shipped for a
 * foreign shard (ShipShardTask, list->params), planned for a local one. False when it cannot be
 * shipped.
 */
bool ShipOrPlanShardTask(ShardTaskList *list, executor::ShardTask *task, Query *shard_query, List *shard_relids,
                         int cursor_options, ParamListInfo bound_params);

/* The function RTE's index in a coordinator query over the shards' rows: it replaces the distributed table(s). */
constexpr int kShardRowsRti = 1;

/* At most this many co-located tables in one join. */
constexpr int kMaxJoinedTables = 16;

/* The distributed tables a multi-shard query reads: one, or co-located ones inner-joined on their distribution columns.
 */
struct JoinedTables
{
	int count;
	Index rtis[kMaxJoinedTables];
	const catalog::CachedTable *tables[kMaxJoinedTables];
};

/*
 * The distributed tables of parse's FROM into joined: true when its range table is one
 * distributed table, or co-located ones inner-joined by equalities of their distribution
 * columns (hash equality, deterministic collation) that connect them all, so that a joined row's
 * rows are all in shards of one index; false for anything else (other relations, outer joins,
 * functions, subqueries, joins on other columns).
 */
bool CollectJoinedTables(Query *parse, JoinedTables *joined);

/* The position in joined of the table whose distribution column node is (a plain Var), or -1. */
int DistributionColumnOf(const JoinedTables *joined, Node *node);

/* The checked model's statement (list->model_state 2) with its names replaced by names (quoted, in order). */
char *SpliceShardNames(const ShardTaskList *list, const char *const *names);

/*
 * Adds the task of the shards of index of joined (query's tables at joined->rtis; the first
 * locked in lockmode, the others as query's entries say) without a copy of query: its statement
 * is the checked model's with their names (ShipOrPlanShardTask). False, adding nothing, while
 * there is no checked model or the shards are local.
 */
bool AddNamedShardTask(ShardTaskList *list, Query *query, const JoinedTables *joined, int index, LOCKMODE lockmode);

/*
 * Points the tables of joined from the first-th on (range table entries of shard_query, a task's
 * own copy) at their shards of index, locked as the distributed tables are; returns shard_relids
 * with those shards appended (what ShipShardTask's statement reads).
 */
List *PointJoinedTablesAtShards(ShardTaskList *list, Query *shard_query, const JoinedTables *joined, int index,
                                int first, List *shard_relids);

/*
 * The shard indexes parse needs for joined (ShardsToKeep of every table; a joined row has a row
 * of each in shards of one index), palloc'd, or NULL when running them as shard tasks gains
 * nothing or cannot work: only local shards (PostgreSQL's own plan reads them in one executor,
 * with nothing to send; unless local_only, for a statement whose shard tasks do what that plan
 * cannot), or the shards of one index not on one node with the table's attribute numbers.
 */
bool *ShardIndexesToRun(Query *parse, const JoinedTables *joined, bool local_only = false);

/* FROM json_to_recordset('[]') AS partials(names of exprs): the shards' rows' place in a coordinator query. */
RangeTblEntry *ShardRowsRte(List *names, List *exprs);

/*
 * The plan of coordinator (parse over the shards' rows names/exprs, as range table entry
 * kShardRowsRti) with worker run on each shard index of keep (ShardIndexesToRun), every table
 * replaced by its shard of that index, and the scan of the shards' rows a scan of kind
 * (per_shard: what each shard runs, for EXPLAIN); NULL when a part cannot be shipped or the
 * coordinator's plan is not one scan of the shards' rows. coordinator's range table and FROM
 * are replaced.
 */
PlannedStmt *PlanOverShardRows(Query *parse, const JoinedTables *joined, const bool *keep, Query *coordinator,
                               Query *worker, List *names, List *exprs, executor::ShardRowsKind kind,
                               const char *per_shard, const char *query_string, int cursor_options,
                               ParamListInfo bound_params);

} // namespace fdwshard::planner
