/* Recognising distributed tables from their partition key, with no catalog access. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/* The distribution of a distributed table, read from its partition key (relcache). */
struct Distribution
{
	AttrNumber attnum;   /* distribution column */
	Oid column_type;     /* its type */
	Expr *partition_key; /* fdwshard_hash(column) as stored, Var varno 1 */
};

/*
 * Fills *distribution when rel is partitioned by RANGE (fdwshard_hash(column)), which is how
 * create_distributed_table builds every distributed table, and returns whether it is.
 */
bool GetDistribution(Relation rel, Distribution *distribution);

} // namespace fdwshard
