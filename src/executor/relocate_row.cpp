/*
 * fdwshard.relocate_row(): AFTER UPDATE OF <distribution column> row trigger. PostgreSQL moves a
 * row between local partitions when its partition key changes, but postgres_fdw updates a
 * foreign partition's row in place on the worker, leaving it in the wrong shard. After the
 * statement's scan is over, this trigger moves such rows: delete from the old shard, insert
 * through the distributed table so tuple routing picks the new one.
 */
#include "fdwshard/executor/relocate_row.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/distribution.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard
{

namespace
{

using namespace catalog;

/* OPERATOR(schema.=) for the column type's hash equality, so the DELETE ships to the worker. */
char *
EqualityOperator(Oid column_type)
{
	Oid type = getBaseType(column_type);
	TypeCacheEntry *entry = lookup_type_cache(type, TYPECACHE_HASH_OPFAMILY);
	Oid opno = get_opfamily_member(entry->hash_opf, type, type, HTEqualStrategyNumber);
	HeapTuple tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "fdwshard: no equality operator for type %s", format_type_be(column_type));
	Form_pg_operator form = (Form_pg_operator) GETSTRUCT(tuple);
	char *op =
	    psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(form->oprnamespace)), NameStr(form->oprname));
	ReleaseSysCache(tuple);
	return op;
}

void
RelocateRow(TriggerData *trigger)
{
	Relation shard = trigger->tg_relation;

	/* Local shards: PostgreSQL's own row movement already put the row in place. */
	if (shard->rd_rel->relkind != RELKIND_FOREIGN_TABLE)
		return;

	Oid shard_relid = RelationGetRelid(shard);
	Oid parent_relid = get_partition_parent(shard_relid, false);
	Relation parent = relation_open(parent_relid, AccessShareLock);
	Distribution distribution;
	if (!GetDistribution(parent, &distribution))
		elog(ERROR, "fdwshard: \"%s\" is not a distributed table", RelationGetRelationName(parent));
	Oid collation = exprInputCollation((Node *) distribution.partition_key);
	relation_close(parent, AccessShareLock);

	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(shard), distribution.attnum - 1);
	bool is_null;
	Datum value = heap_getattr(trigger->tg_newtuple, distribution.attnum, RelationGetDescr(shard), &is_null);
	if (is_null)
		ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
		                errmsg("null value in distribution column \"%s\" of relation \"%s\"", NameStr(att->attname),
		                       get_rel_name(parent_relid))));
	int32 hash = DatumHash(value, att->atttypid, collation);

	const catalog::CachedTable *table = catalog::LookupDistributedTable(parent_relid);
	if (table == NULL)
		elog(ERROR, "fdwshard: \"%s\" is not a distributed table", get_rel_name(parent_relid));
	bool misplaced = catalog::ShardForHash(table, hash)->relid != shard_relid;

	if (misplaced)
		MoveRowsOutOfShard(shard_relid, parent_relid, distribution.attnum, &value, 1);
}

} // namespace

void
MoveRowsOutOfShard(Oid shard_relid, Oid parent_relid, AttrNumber attnum, const Datum *values, int count)
{
	Oid column_type = get_atttype(parent_relid, attnum);
	char *column = get_attname(parent_relid, attnum, false);
	char *shard_name = get_rel_name(shard_relid);

	/* One statement text for every value: every row of this shard with the value is misplaced. */
	char *columns = remote::InsertableColumnList(parent_relid);
	char *sql =
	    psprintf("WITH moved AS (DELETE FROM ONLY %s WHERE %s %s $1 RETURNING %s) "
	             "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM moved",
	             remote::QualifiedRelationName(shard_relid), quote_identifier(column), EqualityOperator(column_type),
	             columns, remote::QualifiedRelationName(parent_relid), columns, columns);
	SPI_connect();
	for (int i = 0; i < count; i++)
	{
		uint64 moved = SpiRun(sql, {SpiArg{column_type, values[i], false}});
		elog(DEBUG1, "fdwshard: moved " UINT64_FORMAT " row(s) out of shard \"%s\"", moved, shard_name);
	}
	SPI_finish();
}

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(relocate_row);

	Datum relocate_row(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    if (!CALLED_AS_TRIGGER(fcinfo))
				    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				                    errmsg("fdwshard.relocate_row() must be called as a trigger")));
			    TriggerData *trigger = (TriggerData *) fcinfo->context;
			    if (!TRIGGER_FIRED_AFTER(trigger->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigger->tg_event) ||
			        !TRIGGER_FIRED_BY_UPDATE(trigger->tg_event))
				    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				                    errmsg("fdwshard.relocate_row() must fire AFTER UPDATE FOR EACH ROW")));
			    fdwshard::RelocateRow(trigger);
			    return PointerGetDatum(NULL);
		    });
	}
}
