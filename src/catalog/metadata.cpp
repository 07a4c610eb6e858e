/* Reads of the fdwshard catalog for operations, and shard id assignment (see catalog/metadata.h). */
#include "fdwshard/catalog/metadata.h"

#include "fdwshard/catalog/metadata_cache.h"

#include "fdwshard/catalog/spi.h"

namespace fdwshard::catalog
{

namespace
{

/* GUC fdwshard.next_shard_id: owned by the backend, advanced each time a shard id is taken. */
int next_shard_id = 0;

const char *const kNodeColumns =
    "SELECT nodeid, host, port, dbname, is_local, should_have_shards, server_name FROM fdwshard.node ";

Node *
NodeFromRow(uint64 row)
{
	Node *node = (Node *) palloc0(sizeof(Node));
	char *server = SpiText(row, 7);

	node->nodeid = SpiInt4(row, 1);
	node->host = SpiText(row, 2);
	node->port = SpiInt4(row, 3);
	node->dbname = SpiText(row, 4);
	node->is_local = SpiBool(row, 5);
	node->should_have_shards = SpiBool(row, 6);
	node->serverid = server != NULL ? get_foreign_server_oid(server, false) : InvalidOid;
	return node;
}

} // namespace

Node *
ReadNode(int32 nodeid, bool missing_ok)
{
	if (SpiRun(psprintf("%s WHERE nodeid = $1", kNodeColumns), {Int4Arg(nodeid)}) == 0)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("node %d does not exist", nodeid),
		                errhint("SELECT * FROM fdwshard.nodes lists the registered nodes.")));
	}
	return NodeFromRow(0);
}

List *
NodesForNewShards(void)
{
	List *nodes = NIL;
	uint64 count = SpiRun(psprintf("%s WHERE should_have_shards ORDER BY nodeid", kNodeColumns));

	for (uint64 row = 0; row < count; row++)
		nodes = lappend(nodes, NodeFromRow(row));
	return nodes;
}

bool
IsDistributedTable(Oid relid)
{
	return LookupDistributedTable(relid) != NULL;
}

int64
NextShardId(void)
{
	if (next_shard_id > 0)
		return next_shard_id++;
	CatalogWrite("SELECT nextval('fdwshard.shardid_seq')");
	return SpiInt8(0, 1);
}

int64 *
NextShardIds(int count)
{
	int64 *ids = (int64 *) palloc0(sizeof(int64) * (count + 1));

	if (next_shard_id > 0)
	{
		for (int i = 0; i < count; i++)
			ids[i] = next_shard_id++;
		return ids;
	}
	if (CatalogWrite("SELECT nextval('fdwshard.shardid_seq') FROM pg_catalog.generate_series(1, $1) ORDER BY 1",
	                 {Int4Arg(count)}) != (uint64) count)
		elog(ERROR, "fdwshard: could not take %d shard ids", count);
	for (int i = 0; i < count; i++)
		ids[i] = SpiInt8(i, 1);
	return ids;
}

void
InitCatalog(void)
{
	DefineCustomIntVariable("fdwshard.next_shard_id", "Shard id given to the next shard created (0: use the sequence).",
	                        "Tests set it so shard names are deterministic.", &next_shard_id, 0, 0, INT_MAX,
	                        PGC_USERSET, 0, NULL, NULL, NULL);
}

} // namespace fdwshard::catalog
