/* DDL on every shard of a distributed table: shard lists, running SQL on a shard's node, the bypass flag. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::commands
{

/* A distributed table as DDL sees it. */
struct DistributedTable
{
	Oid relid;
	char *schema;
	char *name;
	char *column; /* distribution column */
	AttrNumber attnum;
	int32 colocationid;
	List *shards; /* Shard *, by shard index */
};

/* One shard: its relation on the coordinator (local table or foreign table) and its node. */
struct Shard
{
	int64 shardid;
	int32 shard_index;
	char *name; /* relation name, in the table's schema, the same on the worker */
	Oid relid;  /* local partition or foreign table partition */
	bool is_local;
	Oid serverid; /* InvalidOid for local shards */
};

/* True while fdwshard runs its own DDL: the utility hook then neither propagates nor refuses. */
bool PropagationBypassed(void);
bool SetPropagationBypassed(bool bypassed); /* returns the previous value */

/* Runs body with propagation bypassed; the previous state comes back even on error. */
template <typename Body>
void
WithoutPropagation(Body &&body)
{
	bool saved = SetPropagationBypassed(true);

	PG_TRY();
	{
		body();
	}
	PG_FINALLY();
	{
		SetPropagationBypassed(saved);
	}
	PG_END_TRY();
}

/* True when the fdwshard catalog exists in this database (the extension is created, not being created). */
bool CatalogReady(void);

/* The distributed table relid, with its shards; NULL when relid is not distributed. Opens its own SPI. */
DistributedTable *LoadDistributedTable(Oid relid);

/* The distributed table a shard relation belongs to, or InvalidOid. */
Oid ShardOwner(Oid relid);

/*
 * The distributed table relation names (NULL when it is none, or does not exist). A shard is
 * refused: "cannot <action> shard "x" of distributed table "t"<suffix>", with hint.
 */
DistributedTable *DistributedTableOrRefuseShard(RangeVar *relation, const char *action, const char *hint,
                                                const char *suffix = "");

/* Runs sql on the coordinator with propagation bypassed (SPI). */
void RunLocal(const char *sql);

/* Runs sql where the shard lives: SPI for local shards, postgres_fdw's connection for remote ones. */
void RunOnShardNode(const Shard *shard, const char *sql);

/* The first column of the first row of sql where the shard lives, or NULL. */
char *QueryOnShardNode(const Shard *shard, const char *sql);

/*
 * PostgreSQL's ownership check ("must be owner of table ..."), for the statements fdwshard runs
 * itself instead of PostgreSQL (shard keys): on a worker they would run as the user of the user
 * mapping, whoever asked.
 */
void RequireOwner(const DistributedTable *table);

/* schema.name of the shard, quoted. */
const char *ShardRelName(const DistributedTable *table, const Shard *shard);

/* ALTER TABLE or ALTER FOREIGN TABLE, whichever the shard's coordinator relation needs. */
const char *AlterShardKeyword(const Shard *shard);

/* Invalidates the relcache entry of the distributed table (metadata caches refresh). */
void InvalidateDistributedTable(Oid relid);

} // namespace fdwshard::commands

namespace fdwshard::commands
{

/* The first column of every row of a local query with one oid parameter, copied to the caller's context. */
List *LocalTexts(const char *sql, Oid arg);

/* The remote shards of a table (Shard *). */
List *RemoteShards(const DistributedTable *table);

} // namespace fdwshard::commands
