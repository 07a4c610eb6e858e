/* DDL on every shard of a distributed table: shard lists, running SQL on a shard's node, the bypass flag. */
#pragma once

#include "fdwshard/pg.h"

#include <exception>

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

/*
 * Runs body with propagation bypassed; the previous state comes back even on error. A C++
 * exception from body is caught inside PG_TRY and rethrown after PG_END_TRY (never thrown through it).
 */
template <typename Body>
void
WithoutPropagation(Body &&body)
{
	bool saved = SetPropagationBypassed(true);
	std::exception_ptr cpp_error;

	PG_TRY();
	{
		try
		{
			body();
		}
		catch (...)
		{
			cpp_error = std::current_exception();
		}
	}
	PG_FINALLY();
	{
		SetPropagationBypassed(saved);
	}
	PG_END_TRY();
	if (cpp_error)
		std::rethrow_exception(cpp_error);
}

/* True when the fdwshard catalog exists in this database (the extension is created, not being created). */
bool CatalogReady(void);

/* The distributed table relid, with its shards; NULL when relid is not distributed. Opens its own SPI. */
DistributedTable *LoadDistributedTable(Oid relid);

/* The distributed table a shard relation belongs to, or InvalidOid. */
Oid ShardOwner(Oid relid);

/*
 * The distributed table relation names (NULL when it is none, or does not exist). A shard is
 * refused: "cannot <action> shard "x" of distributed table "t"<suffix>", with hint. The table is
 * checked as PostgreSQL would (the current user must own it: RequireTableOwner) and the current
 * user must reach its workers (RequireShardAccess), before any shard is touched.
 */
DistributedTable *DistributedTableOrRefuseShard(RangeVar *relation, const char *action, const char *hint,
                                                const char *suffix = "");

/*
 * "must be owner of table t" unless the current user owns relid (or, for DROP, its schema): the
 * coordinator checks as one server would, whatever role a user mapping logs in as on a worker.
 */
void RequireTableOwner(Oid relid, bool schema_owner_may = false);

/* Refuses, with the statement to run, when the current user has no user mapping for a remote shard's node. */
void RequireShardAccess(const DistributedTable *table);

/* Runs sql on the coordinator with propagation bypassed (SPI). */
void RunLocal(const char *sql);

/* Runs sql where the shard lives: SPI for local shards, postgres_fdw's connection for remote ones. */
void RunOnShardNode(const Shard *shard, const char *sql);

/*
 * Creates schema on the worker of serverid unless it exists there. Asks first: CREATE SCHEMA IF
 * NOT EXISTS needs CREATE on the database even when the schema exists, which a table owner may lack.
 */
void EnsureRemoteSchema(Oid serverid, const char *schema);

/* The first column of the first row of sql where the shard lives, or NULL. */
char *QueryOnShardNode(const Shard *shard, const char *sql);

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
