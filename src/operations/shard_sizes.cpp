/* Shard sizes measured on their nodes: fdwshard.shard_sizes() (the views, by_disk_size) and fdwshard_table_size(). */
#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"

extern "C"
{
#include "utils/resowner.h"
}

namespace fdwshard::operations
{

namespace
{

/* One shard to measure, and what its node said. */
struct ShardSize
{
	int64 shardid;
	Oid relid;    /* shard relation on the coordinator */
	int32 nodeid; /* node holding it */
	Oid serverid; /* InvalidOid: a local shard */
	bool has_bytes;
	int64 bytes;
	bool has_rows;
	int64 rows; /* pg_class.reltuples on the node; unknown (NULL) when never vacuumed or analyzed */
};

/*
 * Every worker is asked once for all of its shards: the shard tables' qualified names go as one
 * text[] parameter, to_regclass finds them (NULL sizes for a table that is missing), and ord
 * says which row is which.
 */
constexpr const char *kSizesQuery = "SELECT u.ord, pg_catalog.pg_total_relation_size(c.oid), c.reltuples "
                                    "FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY u(name, ord) "
                                    "LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(u.name)";

/* The shards of relid, or of every distributed table when relid is InvalidOid; *count is set. */
ShardSize *
CollectShards(Oid relid, int *count)
{
	List *tables = NIL;
	if (OidIsValid(relid))
		tables = list_make1_oid(relid);
	else
	{
		MemoryContext caller_context = CurrentMemoryContext; /* the list outlives SPI's memory */
		SPI_connect();
		uint64 rows = catalog::SpiRun("SELECT logicalrelid::oid FROM fdwshard.distributed_table ORDER BY 1");
		MemoryContext spi_context = MemoryContextSwitchTo(caller_context);
		for (uint64 row = 0; row < rows; row++)
		{
			bool is_null;
			tables = lappend_oid(tables, DatumGetObjectId(catalog::SpiValue(row, 1, &is_null)));
		}
		MemoryContextSwitchTo(spi_context);
		SPI_finish();
	}

	int total = 0;
	int used = 0;
	ShardSize *shards = NULL;
	ListCell *cell;
	foreach (cell, tables)
	{
		/* Copied at once: the cache entry is valid only until the next invalidation. */
		const catalog::CachedTable *table = catalog::LookupDistributedTable(lfirst_oid(cell));
		if (table == NULL)
			continue; /* dropped since the list was read */
		total += table->shard_count;
		shards = shards == NULL ? (ShardSize *) palloc0(sizeof(ShardSize) * total)
		                        : (ShardSize *) repalloc(shards, sizeof(ShardSize) * total);
		for (int i = 0; i < table->shard_count; i++)
		{
			ShardSize *shard = &shards[used++];
			memset(shard, 0, sizeof(ShardSize));
			shard->shardid = table->shards[i].shardid;
			shard->relid = table->shards[i].relid;
			shard->nodeid = table->shards[i].nodeid;
			shard->serverid = table->shards[i].serverid;
		}
	}
	*count = used;
	return shards;
}

/* pg_class.reltuples as an estimate: -1 (never vacuumed or analyzed) is no estimate. */
void
SetRows(ShardSize *shard, double reltuples)
{
	shard->has_rows = reltuples >= 0;
	shard->rows = shard->has_rows ? (int64) reltuples : 0;
}

/* A local shard, measured here (as pg_total_relation_size would; NULL if the relation is gone). */
void
MeasureLocal(ShardSize *shard)
{
	HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(shard->relid));
	if (!HeapTupleIsValid(tuple))
		return;
	SetRows(shard, ((Form_pg_class) GETSTRUCT(tuple))->reltuples);
	ReleaseSysCache(tuple);

	LOCAL_FCINFO(fcinfo, 1);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(shard->relid);
	fcinfo->args[0].isnull = false;
	Datum bytes = pg_total_relation_size(fcinfo);
	shard->has_bytes = !fcinfo->isnull;
	shard->bytes = fcinfo->isnull ? 0 : DatumGetInt64(bytes);
}

/* "node N (host:port)", for errors and warnings about one node; built before anything can fail. */
const char *
NodeLabel(int32 nodeid)
{
	const catalog::CachedNode *node = catalog::LookupNode(nodeid);
	if (node == NULL)
		return psprintf("node %d", nodeid);
	return psprintf("node %d (%s:%d)", node->nodeid, node->host, node->port);
}

/* The first line of text (libpq's messages go on with hints on more lines). */
const char *
FirstLine(const char *text)
{
	const char *end = strchr(text, '\n');
	return end == NULL ? text : pnstrdup(text, end - text);
}

/* Names the node in errors raised while it is measured (arg: its label). */
void
MeasureErrorContext(void *arg)
{
	errcontext("while measuring the shards on %s", (const char *) arg);
}

/* The count shards at indexes (into shards) that one worker holds, in one query on the current user's connection. */
void
MeasureOnWorker(ShardSize *shards, const int *indexes, int count)
{
	Datum *names = (Datum *) palloc(sizeof(Datum) * count);
	for (int i = 0; i < count; i++)
		names[i] = CStringGetTextDatum(remote::ForeignTableRemoteName(shards[indexes[i]].relid));
	ArrayType *array = construct_array(names, count, TEXTOID, -1, false, TYPALIGN_INT);
	const char *array_text = OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(array));
	const Oid types[1] = {TEXTARRAYOID};
	const char *const values[1] = {array_text};

	PGresult *result =
	    remote::ExecuteParams(shards[indexes[0]].serverid, kSizesQuery, 1, types, values, false /* only reads */);
	/* Copied out before anything can raise an error: the result is libpq's (malloc), not palloc'd. */
	int rows = PQntuples(result);
	int64 *ords = (int64 *) palloc(sizeof(int64) * rows);
	char **bytes = (char **) palloc0(sizeof(char *) * rows);
	char **reltuples = (char **) palloc0(sizeof(char *) * rows);
	bool complete = PQnfields(result) == 3;
	for (int row = 0; complete && row < rows; row++)
	{
		ords[row] = strtoll(PQgetvalue(result, row, 0), NULL, 10);
		if (!PQgetisnull(result, row, 1))
			bytes[row] = pstrdup(PQgetvalue(result, row, 1));
		if (!PQgetisnull(result, row, 2))
			reltuples[row] = pstrdup(PQgetvalue(result, row, 2));
	}
	PQclear(result);
	if (!complete)
		ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION), errmsg("unexpected answer to the shard size query")));

	for (int row = 0; row < rows; row++)
	{
		if (ords[row] < 1 || ords[row] > count)
			continue;
		ShardSize *shard = &shards[indexes[ords[row] - 1]];
		if (bytes[row] != NULL)
		{
			shard->has_bytes = true;
			shard->bytes = strtoll(bytes[row], NULL, 10);
		}
		if (reltuples[row] != NULL)
			SetRows(shard, strtod(reltuples[row], NULL));
	}
}

/*
 * One worker's shards, with errors naming the node. Unless must_answer, a worker that cannot
 * be measured (down, no user mapping, an error there) leaves its shards' sizes unknown with a
 * WARNING that names it, so a monitoring view keeps showing the other nodes; the attempt runs in
 * a subtransaction, which rolls back whatever it left half-done. A cancel or timeout still ends
 * the statement.
 */
void
MeasureNode(ShardSize *shards, const int *indexes, int count, bool must_answer)
{
	const char *label = NodeLabel(shards[indexes[0]].nodeid);
	ErrorContextCallback callback;
	callback.callback = MeasureErrorContext;
	callback.arg = (void *) label;
	callback.previous = error_context_stack;
	error_context_stack = &callback;

	if (must_answer)
	{
		MeasureOnWorker(shards, indexes, count);
		error_context_stack = callback.previous;
		return;
	}

	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		MeasureOnWorker(shards, indexes, count);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		error_context_stack = callback.previous;
		MemoryContextSwitchTo(caller_context);
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION)
			ReThrowError(edata);
		ereport(WARNING, (errcode(edata->sqlerrcode), errmsg("could not measure the shards on %s", label),
		                  edata->detail != NULL ? errdetail("%s: %s", edata->message, FirstLine(edata->detail))
		                                        : errdetail("%s", edata->message),
		                  errhint("Their sizes show as NULL until the node answers.")));
		for (int i = 0; i < count; i++)
			shards[indexes[i]].has_bytes = shards[indexes[i]].has_rows = false;
		FreeErrorData(edata);
	}
	PG_END_TRY();
	error_context_stack = callback.previous;
}

/* Measures every shard: local ones here, each worker's in one query (see MeasureNode for must_answer). */
void
MeasureShards(ShardSize *shards, int count, bool must_answer)
{
	int *indexes = (int *) palloc(sizeof(int) * (count > 0 ? count : 1));
	bool *done = (bool *) palloc0(sizeof(bool) * (count > 0 ? count : 1));
	for (int i = 0; i < count; i++)
	{
		if (done[i])
			continue;
		if (!OidIsValid(shards[i].serverid))
		{
			MeasureLocal(&shards[i]);
			done[i] = true;
			continue;
		}
		/* This shard's node: all of its shards at once. */
		int found = 0;
		for (int j = i; j < count; j++)
			if (!done[j] && shards[j].nodeid == shards[i].nodeid)
			{
				indexes[found++] = j;
				done[j] = true;
			}
		MeasureNode(shards, indexes, found, must_answer);
	}
}

/* The distributed table whose shard relation relid is, or InvalidOid. */
Oid
ParentOfShard(Oid relid)
{
	if (!get_rel_relispartition(relid))
		return InvalidOid;
	Oid parent = get_partition_parent(relid, false);
	return catalog::LookupDistributedTable(parent) != NULL ? parent : InvalidOid;
}

} // namespace

} // namespace fdwshard::operations

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_shard_sizes);
	PG_FUNCTION_INFO_V1(fdwshard_table_size);

	/*
	 * fdwshard.shard_sizes(table_name regclass DEFAULT NULL, nodes_must_answer bool DEFAULT false)
	 * RETURNS TABLE (shardid bigint, rows_estimate bigint, bytes bigint): the shards of table_name
	 * (every distributed table when NULL), measured on their nodes.
	 */
	Datum fdwshard_shard_sizes(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    using namespace fdwshard::operations;
			    Oid relid = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
			    bool must_answer = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
			    if (OidIsValid(relid) && fdwshard::catalog::LookupDistributedTable(relid) == NULL)
				    ereport(ERROR,
				            (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				             errmsg("relation \"%s\" is not a distributed table",
				                    DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid))))));
			    int count;
			    ShardSize *shards = CollectShards(relid, &count);
			    MeasureShards(shards, count, must_answer);

			    InitMaterializedSRF(fcinfo, 0);
			    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
			    for (int i = 0; i < count; i++)
			    {
				    Datum values[3];
				    bool nulls[3] = {false, !shards[i].has_rows, !shards[i].has_bytes};
				    values[0] = Int64GetDatum(shards[i].shardid);
				    values[1] = Int64GetDatum(shards[i].rows);
				    values[2] = Int64GetDatum(shards[i].bytes);
				    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			    }
			    return (Datum) 0;
		    });
	}

	/*
	 * fdwshard_table_size(table_name regclass) RETURNS bigint: pg_total_relation_size across
	 * nodes. A distributed table is the sum of its shards measured on their nodes (every node
	 * must answer: a partial sum would be a wrong size), a shard its size on its node, any other
	 * table or materialized view its pg_total_relation_size.
	 */
	Datum fdwshard_table_size(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    using namespace fdwshard::operations;
			    Oid relid = PG_GETARG_OID(0);
			    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
			    if (!HeapTupleIsValid(tuple))
				    PG_RETURN_NULL(); /* as pg_total_relation_size: a relation dropped meanwhile */
			    char relkind = ((Form_pg_class) GETSTRUCT(tuple))->relkind;
			    ReleaseSysCache(tuple);

			    Oid distributed = InvalidOid;
			    int64 shardid = 0;
			    if (fdwshard::catalog::LookupDistributedTable(relid) != NULL)
				    distributed = relid;
			    else if (relkind == RELKIND_FOREIGN_TABLE && OidIsValid(distributed = ParentOfShard(relid)))
			    {
				    const fdwshard::catalog::CachedTable *table =
				        fdwshard::catalog::LookupDistributedTable(distributed);
				    for (int i = 0; i < table->shard_count; i++)
					    if (table->shards[i].relid == relid)
						    shardid = table->shards[i].shardid;
			    }
			    else if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
			             relkind != RELKIND_MATVIEW && relkind != RELKIND_TOASTVALUE)
				    ereport(ERROR,
				            (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a table", get_rel_name(relid)),
				             errhint("fdwshard_table_size measures tables, distributed tables and their shards, "
				                     "and materialized views; use pg_total_relation_size for other relations.")));

			    if (!OidIsValid(distributed))
				    return DirectFunctionCall1(pg_total_relation_size, ObjectIdGetDatum(relid));

			    int count;
			    ShardSize *shards = CollectShards(distributed, &count);
			    if (shardid != 0)
			    {
				    for (int i = 0; i < count; i++)
					    if (shards[i].shardid == shardid)
					    {
						    shards[0] = shards[i];
						    count = 1;
						    break;
					    }
			    }
			    MeasureShards(shards, count, true);
			    int64 total = 0;
			    for (int i = 0; i < count; i++)
				    total += shards[i].bytes;
			    PG_RETURN_INT64(total);
		    });
	}
}
