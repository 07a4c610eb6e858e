/* Running a list of per-shard tasks: remote statements to all workers at once, local plans in process. */
#pragma once

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/executor/result_row.h"
#include "fdwshard/planner/ship.h"

namespace fdwshard::executor
{

/* One shard's part of a statement, as the planner makes it: SQL for a foreign shard, a plan for a local one. */
struct ShardTask
{
	const catalog::CachedShard *shard;
	char *sql;               /* foreign shard: the statement deparsed against it */
	PlannedStmt *local_plan; /* local shard: the statement planned against it (moves: of every local shard, or NULL) */
};

/* How many items of a scan's custom_private the tasks take; the scan's own items follow. */
constexpr int kShardTasksPrivateLength = 4;

struct ShardCombine;

/* The custom_private of a scan of tasks (params, combine NULL: none); the scan appends its own items. */
List *ShardTasksPrivate(const ShardTask *tasks, int task_count, const ship::ShippedQuery *params,
                        const ShardCombine *combine = NULL);

/* The relations and objects the local plans of tasks depend on, added to stmt's: a change replans. */
void AddShardTaskDependencies(PlannedStmt *stmt, const ShardTask *tasks, int task_count);

/*
 * How one statement reads several shards of a node, worked out from a one-table read's model
 * statement when every task's statement is the model with its shard's name (planner's
 * CombineOf): in a task's statement the FROM item, at offset, becomes
 * "(head shard UNION ALL head shard ...)" then alias; rest is the length of the statement
 * without its FROM item, the same in every task's. The worker plans and runs one statement
 * instead of one per shard, and returns one partial result for them all, which the coordinator
 * combines as it combines the shards' (partial aggregates, rows to order and limit).
 */
struct ShardCombine
{
	const char *head; /* "SELECT <the columns the statement uses, by name> FROM " ("SELECT FROM ": none) */
	int offset;
	int rest;
	const char *alias; /* " name", or "" when the statement has an alias already */
};

/* combine as custom_private keeps it (NULL: NIL), and back. */
List *ShardCombineToList(const ShardCombine *combine);
const ShardCombine *ShardCombineFromList(List *list);

/* The statement that reads as one the shards of count statements, each spliced from the one model. */
char *CombinedShardSql(const ShardCombine *combine, const char *const *sqls, int count);

/* One task as the executor reads it from custom_private. */
struct ShardTaskState
{
	char *shard_name; /* NULL until ShardTaskName */
	int32 nodeid;
	Oid serverid; /* InvalidOid: local shard */
	char *sql;
	PlannedStmt *local_plan;
	Oid relid;            /* the shard */
	int64 rows;           /* rows the shard returned (foreign) or processed (local) */
	int statement_shards; /* after a run: shards its statement read, from it on in the node's order (0: read by
	                         an earlier task's statement) */
};

/*
 * The state of a custom scan of shard tasks, or the start of one (a scan's own fields follow).
 * C-style: palloc'd, freed with the executor's memory; the reset callback clears the result on error.
 */
struct ShardTaskScan
{
	CustomScanState css; /* must be first */
	ShardTaskState *tasks;
	int task_count;
	List *param_sources;
	List *param_types;
	List *local_states;          /* ExprState per coordinator-side expression */
	bool counts_processed;       /* a modify: every shard's row count adds to the statement's */
	bool read_only;              /* the tasks only read: they may run over the pool (see executor/task_run.h) */
	const ShardCombine *combine; /* a node's shards may be read by one statement; NULL: one each */
	int extra_columns;           /* trailing result columns the scan reads itself, not stored */
	bool executed;               /* the tasks ran (once per execution) */
	Tuplestorestate *rows;       /* every shard's rows; NULL: only counted */
	TupleTableSlot *row_slot;    /* reads rows back */
	TupleTableSlot *parse_slot;  /* builds a row from a result */
	RowInput input;
	PGresult *result; /* owned while it is read; cleared by the executor context's reset callback on error */
	MemoryContextCallback cleanup;
};

/* CreateCustomScanState: a state of size bytes (a ShardTaskScan first) with methods, the tasks read from plan. */
Node *CreateShardTaskScan(CustomScan *plan, Size size, const CustomExecMethods *methods);

/* BeginCustomScan: the parameters' expressions, the row input and the result's cleanup. */
void BeginShardTaskScan(CustomScanState *node, EState *estate, int eflags);

/* Called with each foreign shard's result before its rows are stored (scan->result owns it). */
typedef void (*ShardResultFn)(void *arg, ShardTaskState *task, PGresult *result);

/* A foreign shard's result in scan->result: counted, passed to on_result, its rows kept; then freed. */
void ConsumeShardResult(ShardTaskScan *scan, ShardTaskState *task, ShardResultFn on_result, void *arg);

/*
 * Runs every task of scan once; keep_rows stores every shard's rows in scan->rows. The foreign
 * tasks are sent first, every worker at once (see executor/task_run.h for the connections they
 * use), then the local shards run in this process (unless local_first_round is false: the
 * caller runs them after, RunLocalShardTasks), then the workers' results are read as they come.
 */
void RunShardTasks(ShardTaskScan *scan, bool keep_rows, bool local_first_round, ShardResultFn on_result, void *arg);

/* Runs the local shards' plans in this process, under the statement's snapshot and parameters. */
void RunLocalShardTasks(ShardTaskScan *scan);

/* The next stored row into slot; false after the last. */
bool NextShardTaskRow(ShardTaskScan *scan, TupleTableSlot *slot);

/* The next stored row through the scan's projection, if it has one (RETURNING); an empty slot after the last. */
TupleTableSlot *NextProjectedRow(ShardTaskScan *scan);

/* EndCustomScan: frees the rows and any result. */
void EndShardTaskScan(CustomScanState *node);

/* ReScanCustomScan: the tasks ran once, their rows are replayed. */
void ReScanShardTaskScan(CustomScanState *node);

/* The shard's schema-qualified, quoted name, looked up on first use. */
const char *ShardTaskName(ShardTaskState *task);

/*
 * EXPLAIN, after the scan's own properties: the nodes and their shards (rows_received: with
 * the rows each shard sent, or each statement that read several, or processed on the
 * coordinator); VERBOSE adds each foreign shard's SQL, and the form of a statement that reads
 * several shards of a node.
 */
void ExplainShardTasks(const ShardTaskScan *scan, bool rows_received, ExplainState *es);

} // namespace fdwshard::executor
