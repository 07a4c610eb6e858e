/* The "FdwShard Distributed Insert" custom scan: the rows of its subplan, hashed to their shards and written there. */
#pragma once

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/planner/ship.h"

namespace fdwshard::executor
{

/* How a distributed insert's plan writes its rows. */
struct DistributedInsertPlan
{
	Oid relid;             /* the distributed table */
	PlannedStmt *source;   /* the rows: every column of the table in attribute order, or what projection reads */
	List *projection;      /* NIL, or every column's expression over source's rows (OUTER_VAR), planned */
	bool materialize;      /* read every source row before the first write (the source uses the workers' connections) */
	Query *local_template; /* NULL: COPY. Else the INSERT against one shard, its VALUES empty: for local shards */
	Query *shipped_template;   /* the same shipped (coordinator-side parts as params), for foreign shards; NULL: none */
	ship::ShippedQuery params; /* the shipped statements' parameters */
	int batch_rows;            /* rows per shard statement; 0: all of a shard's rows in one */
};

/*
 * The PlannedStmt of parse (an INSERT into a distributed table): the custom scan over
 * plan->source, whose range table comes first, then the distributed table's entry (permissions
 * and locks as for any INSERT). It returns parse's RETURNING rows and counts the rows written.
 */
PlannedStmt *MakeDistributedInsertPlan(Query *parse, const DistributedInsertPlan *plan);

/* Registers the custom scan methods. */
void InitDistributedInsert(void);

} // namespace fdwshard::executor
