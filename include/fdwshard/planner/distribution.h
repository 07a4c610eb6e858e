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

/* True when opno is "=" of the hash operator family of the column's type: equal means equal hash. */
bool IsDistributionEquality(Oid opno, Oid column_type);

/*
 * The parser leaves casts of constants unevaluated (IN (1, 2) on a bigint column is
 * ARRAY[int8(1), int8(2)]): node folded when it has no Vars, Params, aggregates or mutable
 * functions, RelabelTypes stripped; otherwise node as it is.
 */
Node *FoldConstant(Node *node);

} // namespace fdwshard
