/* Rows written into a distributed table's shards in batches: one COPY per full buffer of a shard. */
#pragma once

#include "fdwshard/catalog/metadata_cache.h"

namespace fdwshard::executor
{

/* C-style, palloc'd in the caller's memory context (see BeginShardCopy). */
struct ShardCopy;

/*
 * Starts writing rows of rel (a distributed table; table its cache entry, copied here: the
 * cache may be rebuilt while rows go in) into its shards. Each row is hashed to its shard and
 * printed as COPY text into the shard's buffer; a full buffer goes to its worker as one COPY on
 * the transaction's postgres_fdw connection (counted as written for two-phase commit) and is
 * left to run while more rows come, or to a local shard through PostgreSQL's COPY into that
 * table. Stored generated columns are left to the shard to compute. label names the statement in errors: "COPY name"
 * with the input line when rows carry lines, else the shard's error as it is.
 */
ShardCopy *BeginShardCopy(Relation rel, const catalog::CachedTable *table, const char *label);

/*
 * Sends the rows of shard index elsewhere than the shard's relation: into table remote_name (a
 * quoted qualified name) on serverid, or, with serverid InvalidOid, into local table local_relid.
 * For a shard being moved, whose new table has no partition on the coordinator yet.
 */
void ShardCopyRedirect(ShardCopy *copy, int index, Oid serverid, Oid local_relid, const char *remote_name);

/*
 * Adds count rows: values and nulls hold RelationGetDescr(rel)->natts entries per row, lines
 * (NULL: none) each row's input line. Printed under postgres_fdw's transmission settings, so
 * the caller may free them on return. A NULL distribution value is an error (23502). Stored
 * generated columns are not sent (their values are ignored): each shard computes them.
 */
void ShardCopyAdd(ShardCopy *copy, int count, const Datum *values, const bool *nulls, const uint64 *lines);

/* The error for a row whose distribution column (attnum) is NULL: it has no shard. */
[[noreturn]] void ReportNullDistributionValue(Relation rel, AttrNumber attnum);

/* Rows added so far, per shard index of the table's cache entry as BeginShardCopy copied it. */
const int64 *ShardCopyRowCounts(const ShardCopy *copy);

/* Sends what the buffers hold and waits for every worker: their errors become this statement's. */
void EndShardCopy(ShardCopy *copy);

} // namespace fdwshard::executor
