/*
 * The rows of a table being distributed, moved into its shards (see operations/move_rows.h).
 * PostgreSQL's INSERT into the partitioned table would send each foreign shard its rows in
 * postgres_fdw's small batches, each a round trip with bound parameters; a scan of the old table
 * feeding executor/shard_copy.h sends each shard large COPYs instead.
 */
#include "fdwshard/operations/move_rows.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/executor/shard_copy.h"
#include "fdwshard/remote/deparse.h"

extern "C"
{
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "commands/progress.h"
#include "storage/bufmgr.h"
#include "utils/backend_progress.h"
#include "utils/backend_status.h"
}

namespace fdwshard
{

namespace
{

/* Rows read from the old table before they go to the shards. */
constexpr int kBatchRows = 1000;
/* A NOTICE every this many rows moved... */
constexpr uint64 kNoticeEveryRows = 1000000;
/* ...and one at the end, only for tables larger than this: small tables stay quiet. */
constexpr uint64 kQuietRows = 100000;
/* Blocks of the old table per INSERT when every shard is local (8 MB). */
constexpr BlockNumber kChunkBlocks = 1024;

/* What pg_stat_progress_copy shows while the rows move, and the NOTICEs. */
struct MoveProgress
{
	Oid relid;         /* the table as the caller named it */
	const char *name;  /* its name */
	int64 bytes_total; /* the old table's size */
	uint64 rows;       /* moved so far */
	uint64 noticed;    /* rows the last NOTICE counted */
	TimestampTz started;
};

/*
 * Sets this backend's COPY progress: rows moved, bytes of the old table read. A local shard's
 * COPY (shard_copy.h) starts and ends a COPY progress of its own, so the command is started
 * again after it. A NOTICE after each kNoticeEveryRows rows moved.
 */
void
ReportProgress(MoveProgress &progress, uint64 rows, int64 bytes)
{
	if (MyBEEntry != NULL && (MyBEEntry->st_progress_command != PROGRESS_COMMAND_COPY ||
	                          MyBEEntry->st_progress_command_target != progress.relid))
		pgstat_progress_start_command(PROGRESS_COMMAND_COPY, progress.relid);
	const int params[] = {PROGRESS_COPY_COMMAND, PROGRESS_COPY_TYPE, PROGRESS_COPY_BYTES_TOTAL,
	                      PROGRESS_COPY_BYTES_PROCESSED, PROGRESS_COPY_TUPLES_PROCESSED};
	const int64 values[] = {PROGRESS_COPY_COMMAND_FROM, PROGRESS_COPY_TYPE_CALLBACK, progress.bytes_total,
	                        Min(bytes, progress.bytes_total), (int64) rows};
	pgstat_progress_update_multi_param(lengthof(params), params, values);
	/* Told once more rows have come, so the last count is only in the final NOTICE. */
	if (rows > progress.rows && progress.rows / kNoticeEveryRows > progress.noticed / kNoticeEveryRows)
	{
		ereport(NOTICE, (errmsg("moved " UINT64_FORMAT " rows of table \"%s\" into its shards so far", progress.rows,
		                        progress.name)));
		progress.noticed = progress.rows;
	}
	progress.rows = rows;
}

/* For each attribute of the new table, the old table's attribute of that name (0 for a generated column). */
AttrNumber *
MapColumns(Relation old_rel, Relation new_rel)
{
	TupleDesc new_desc = RelationGetDescr(new_rel);
	AttrNumber *map = (AttrNumber *) palloc0(sizeof(AttrNumber) * new_desc->natts);
	for (int i = 0; i < new_desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(new_desc, i);
		/* The shards compute stored generated columns again, as the INSERT that left them out did. */
		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		map[i] = get_attnum(RelationGetRelid(old_rel), NameStr(att->attname));
		if (map[i] == InvalidAttrNumber)
			elog(ERROR, "fdwshard: column \"%s\" of the distributed table is missing from the old table",
			     NameStr(att->attname));
	}
	return map;
}

/* A table whose shards are all on the coordinator. */
bool
AllShardsLocal(const catalog::CachedTable *table)
{
	for (int i = 0; i < table->shard_count; i++)
		if (OidIsValid(table->shards[i].serverid))
			return false;
	return true;
}

/* Scans old_rel under the active snapshot, a batch at a time into copy; returns how many rows. */
uint64
CopyRows(Relation old_rel, Relation new_rel, executor::ShardCopy *copy, MoveProgress &progress)
{
	TupleDesc old_desc = RelationGetDescr(old_rel);
	int natts = RelationGetDescr(new_rel)->natts;
	AttrNumber *map = MapColumns(old_rel, new_rel);
	MemoryContext batch_context =
	    AllocSetContextCreate(CurrentMemoryContext, "fdwshard move batch", ALLOCSET_DEFAULT_SIZES);
	Datum *values = (Datum *) palloc(sizeof(Datum) * natts * kBatchRows);
	bool *nulls = (bool *) palloc(sizeof(bool) * natts * kBatchRows);
	Datum *old_values = (Datum *) palloc(sizeof(Datum) * old_desc->natts);
	bool *old_nulls = (bool *) palloc(sizeof(bool) * old_desc->natts);
	TupleTableSlot *slot = table_slot_create(old_rel, NULL);
	/* From the first block on (no synchronized scan), so the blocks read say how far it got. */
	TableScanDesc scan = table_beginscan_strat(old_rel, GetActiveSnapshot(), 0, NULL, true, false);
	HeapScanDesc heap = old_rel->rd_rel->relam == HEAP_TABLE_AM_OID ? (HeapScanDesc) scan : NULL;
	uint64 moved = 0;

	for (bool done = false; !done;)
	{
		MemoryContext old_context = MemoryContextSwitchTo(batch_context);
		int count = 0;
		while (count < kBatchRows)
		{
			CHECK_FOR_INTERRUPTS();
			if (!table_scan_getnextslot(scan, ForwardScanDirection, slot))
			{
				done = true;
				break;
			}
			/* The batch outlives the slot's tuple: values come from a copy in the batch's memory. */
			HeapTuple tuple = ExecCopySlotHeapTuple(slot);
			heap_deform_tuple(tuple, old_desc, old_values, old_nulls);
			Datum *row_values = values + (size_t) count * natts;
			bool *row_nulls = nulls + (size_t) count * natts;
			for (int i = 0; i < natts; i++)
			{
				row_values[i] = map[i] != 0 ? old_values[map[i] - 1] : (Datum) 0;
				row_nulls[i] = map[i] != 0 ? old_nulls[map[i] - 1] : true;
			}
			count++;
		}
		MemoryContextSwitchTo(old_context);

		executor::ShardCopyAdd(copy, count, values, nulls, NULL);
		MemoryContextReset(batch_context);
		moved += count;
		ReportProgress(progress, moved,
		               heap != NULL && BlockNumberIsValid(heap->rs_cblock) ? (int64) (heap->rs_cblock + 1) * BLCKSZ
		                                                                   : 0);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	executor::EndShardCopy(copy);
	MemoryContextDelete(batch_context);
	return moved;
}

/*
 * PostgreSQL's INSERT into the partitioned table, whose tuple routing fills local shards faster
 * than shard_copy.h's COPY (which prints every row and parses it again). A heap is read
 * kChunkBlocks at a time (TID range scans), so progress shows between the statements.
 */
uint64
InsertRows(Relation old_rel, Relation new_rel, MoveProgress &progress)
{
	char *columns = remote::InsertableColumnList(RelationGetRelid(new_rel));
	const char *schema = get_namespace_name(RelationGetNamespace(new_rel));
	char *insert = psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
	                        remote::QualifiedName(schema, RelationGetRelationName(new_rel)), columns, columns,
	                        remote::QualifiedName(schema, RelationGetRelationName(old_rel)));
	BlockNumber blocks = RelationGetNumberOfBlocks(old_rel);
	uint64 moved = 0;

	if (old_rel->rd_rel->relam != HEAP_TABLE_AM_OID || blocks <= kChunkBlocks)
	{
		catalog::SpiRun(insert);
		return SPI_processed;
	}
	/* The table is locked: the blocks counted now are all it has. */
	for (BlockNumber start = 0; start < blocks; start += kChunkBlocks)
	{
		bool last = blocks - start <= kChunkBlocks;
		catalog::SpiRun(last ? psprintf("%s WHERE ctid OPERATOR(pg_catalog.>=) '(%u,0)'::pg_catalog.tid", insert, start)
		                     : psprintf("%s WHERE ctid OPERATOR(pg_catalog.>=) '(%u,0)'::pg_catalog.tid "
		                                "AND ctid OPERATOR(pg_catalog.<) '(%u,0)'::pg_catalog.tid",
		                                insert, start, start + kChunkBlocks));
		moved += SPI_processed;
		ReportProgress(progress, moved, (int64) (last ? blocks : start + kChunkBlocks) * BLCKSZ);
	}
	return moved;
}

} // namespace

uint64
MoveRowsIntoShards(Oid old_relid, Oid new_relid, const char *name)
{
	/* The shards and catalog rows this statement made, seen by the cache and the COPYs. */
	CommandCounterIncrement();
	Relation old_rel = table_open(old_relid, NoLock);
	Relation new_rel = table_open(new_relid, NoLock);
	const catalog::CachedTable *table = catalog::LookupDistributedTable(new_relid);
	if (table == NULL)
		elog(ERROR, "fdwshard: distributed table %u is missing from the metadata cache", new_relid);
	int shard_count = table->shard_count;
	/* Begun at once: it copies the cache entry, which only lives until the next invalidation. */
	executor::ShardCopy *copy =
	    AllShardsLocal(table) ? NULL : executor::BeginShardCopy(new_rel, table, RelationGetRelationName(new_rel));

	MoveProgress progress{};
	progress.relid = old_relid;
	progress.name = name;
	progress.bytes_total = (int64) RelationGetNumberOfBlocks(old_rel) * BLCKSZ;
	progress.started = GetCurrentTimestamp();
	ReportProgress(progress, 0, 0);

	/*
	 * A snapshot taken now, as the INSERT ... SELECT this replaces took one: in READ COMMITTED it
	 * sees rows committed while this call waited for the table's lock, which the statement's own
	 * snapshot would miss (and the old table's drop would lose).
	 */
	PushActiveSnapshot(GetTransactionSnapshot());
	uint64 moved = copy == NULL ? InsertRows(old_rel, new_rel, progress) : CopyRows(old_rel, new_rel, copy, progress);
	PopActiveSnapshot();
	ReportProgress(progress, moved, progress.bytes_total);
	pgstat_progress_end_command();

	long elapsed_ms = TimestampDifferenceMilliseconds(progress.started, GetCurrentTimestamp());
	elog(DEBUG1, "fdwshard: moved " UINT64_FORMAT " rows of \"%s\" into %d shards", moved, name, shard_count);
	if (moved > kQuietRows)
		ereport(NOTICE, (errmsg("moved " UINT64_FORMAT " rows of table \"%s\" into %d shards in %ld.%03ld s", moved,
		                        name, shard_count, elapsed_ms / 1000, elapsed_ms % 1000)));
	table_close(new_rel, NoLock);
	table_close(old_rel, NoLock);
	return moved;
}

} // namespace fdwshard
