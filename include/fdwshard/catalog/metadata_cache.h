/* Backend-local cache of distributed tables, their shards and placements: the router's only source. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::catalog
{

/* One shard of a cached distributed table, with its placement resolved. */
struct CachedShard
{
	int64 shardid;
	int32 min_hash;
	int32 max_hash;
	Oid relid;    /* shard relation on the coordinator: local table or foreign table */
	int32 nodeid; /* node holding the shard */
	Oid serverid; /* foreign server of that node; InvalidOid for a local shard */
	/*
	 * Whether its attribute numbers equal the distributed table's (Vars map 1:1): kAttnosUnknown
	 * until ShardSameAttnos first asks, so building an entry reads no shard's catalog rows.
	 */
	mutable int8 same_attnos;
	/* ShardQuotedName's answer and the relation-name generation it was read in; NULL until asked. */
	mutable const char *quoted_name;
	mutable uint64 name_generation;
};

constexpr int8 kAttnosUnknown = -1;

/* A distributed table as the router sees it. Valid until the next invalidation is processed. */
struct CachedTable
{
	Oid relid; /* hash key: the distributed (partitioned) table */
	bool valid;
	bool is_distributed;
	AttrNumber dist_attnum;
	Oid dist_type;
	int32 colocationid;
	int32 shard_count;
	bool uniform;          /* ranges are the equal split of ShardHashRange: index by arithmetic */
	bool has_row_triggers; /* user row triggers besides fdwshard's relocate trigger */
	bool has_stmt_triggers;
	CachedShard *shards; /* by shard index; in the cache's memory context */
	int32 key_count;     /* PRIMARY KEY and UNIQUE shard keys: what ON CONFLICT ON CONSTRAINT may name */
	NameData *key_names; /* key_count names; in the cache's memory context, NULL when none */
};

/* True when table has a PRIMARY KEY or UNIQUE shard key named name. */
bool HasConstraintKey(const CachedTable *table, const char *name);

/* A node as the router and EXPLAIN see it. */
struct CachedNode
{
	int32 nodeid;
	bool is_local;
	char host[NAMEDATALEN * 2];
	int32 port;
};

/*
 * The cached table relid, or NULL when it is not a distributed table. Builds the entry on a miss
 * (one catalog read); afterwards O(1) until an invalidation marks it stale.
 */
const CachedTable *LookupDistributedTable(Oid relid);

/* The shard of table holding hash: arithmetic for uniform ranges, binary search otherwise. */
const CachedShard *ShardForHash(const CachedTable *table, int32 hash);

/*
 * True when shard index's attribute numbers equal the table's. Looked up on first use and kept in
 * the entry: a point query reads one shard's catalog rows, not every shard's. shard_locked: the
 * caller holds a lock on the shard and plans a statement on it (which opens it anyway), so its
 * relcache entry is compared; otherwise its catalog rows are read (no relcache entry made).
 */
bool ShardSameAttnos(const CachedTable *table, int index, bool shard_locked = false);

/*
 * The shard relation's name quoted as the deparser prints it (unqualified), or NULL when it no
 * longer exists. Kept in the entry until the backend processes a change to any pg_class row, so
 * it is exactly as current as get_rel_name, without a catalog-cache lookup per shard per
 * statement (a count(*) over 1024 shards spent a sixth of its coordinator CPU there).
 */
const char *ShardQuotedName(const CachedShard *shard);

/* Index of that shard in table->shards. */
int ShardIndexForHash(const CachedTable *table, int32 hash);

/* The node nodeid, or NULL. */
const CachedNode *LookupNode(int32 nodeid);

/* Registers the relcache callback; called from _PG_init. */
void InitMetadataCache(void);

} // namespace fdwshard::catalog
