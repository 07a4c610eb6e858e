/* A distributed table's shard partitions created in bulk, at a cost that does not grow with their number. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/*
 * PostgreSQL rebuilds a partitioned table's partition descriptor, reading every partition's
 * bound, and scans all of pg_constraint (for foreign keys referencing the parent) for each
 * partition it creates or attaches: n shards made one by one cost O(n^2). Instead each shard is
 * created as an inheritance child of a staging table with the parent's columns and constraints,
 * so that PostgreSQL gives it what a partition of the parent gets (inherited columns, NOT NULL,
 * defaults, generated columns, CHECK constraints, storage), then made a partition of the parent
 * in the catalog: pg_inherits, its dependency, its bound. Triggers and indexes of the parent
 * come after, recursing once. Needs SPI; the parent must be locked and have no partition yet.
 */
struct ShardPartitions
{
	Oid parent;
	Oid staging;
	const char *staging_name; /* qualified and quoted, for INHERITS */
};

/* Creates the staging table next to parent (schema.name, quoted). */
ShardPartitions BeginShardPartitions(Oid parent, const char *parent_name, const char *schema);

/* Makes shard_relid, just created INHERITS (staging_name), the parent's partition FOR VALUES bound. */
void AdoptShardPartition(const ShardPartitions &partitions, Oid shard_relid, const char *bound);

/* Drops the staging table: every shard has been adopted. */
void EndShardPartitions(const ShardPartitions &partitions);

} // namespace fdwshard
