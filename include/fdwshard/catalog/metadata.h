/* The fdwshard catalog: nodes, co-location groups, distributed tables, shards and placements. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::catalog
{

/* A row of fdwshard.node. The local node (the coordinator) has no foreign server. */
struct Node
{
	int32 nodeid;
	char *host;
	int32 port;
	char *dbname;
	bool is_local;
	bool should_have_shards;
	Oid serverid; /* InvalidOid for the local node */
};

/* The node nodeid, or NULL when missing_ok and there is none. Needs an SPI connection. */
Node *ReadNode(int32 nodeid, bool missing_ok);

/* Nodes that receive new shards, by nodeid. Needs an SPI connection. */
List *NodesForNewShards(void);

/* True when relid is a distributed table (the metadata cache, fresh after any invalidation processed). */
bool IsDistributedTable(Oid relid);

/* Next shard id: fdwshard.next_shard_id when set (tests pin ids with it), else the sequence. */
int64 NextShardId(void);

/* count shard ids at once, in ascending order (one statement for the sequence). Needs an SPI connection. */
int64 *NextShardIds(int count);

/* Registers the catalog GUCs. */
void InitCatalog(void);

} // namespace fdwshard::catalog
