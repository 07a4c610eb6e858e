/* get_shard_id_for_distribution_column: which shard holds a value. */
#include "fdwshard/catalog/spi.h"
#include "fdwshard/core/shard_range.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"

namespace fdwshard
{

namespace
{

using namespace catalog;

int64
ShardIdForValue(Oid relid, Datum value, Oid value_type)
{
	SPI_connect();
	if (SpiRun("SELECT g.shard_count FROM fdwshard.distributed_table t JOIN fdwshard.colocation_group g "
	           "USING (colocationid) WHERE t.logicalrelid = $1",
	           {OidArg(relid)}) == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("relation \"%s\" is not a distributed table", get_rel_name(relid))));
	int shard_count = SpiInt4(0, 1);

	SpiRun("SELECT attcollation FROM pg_attribute a JOIN fdwshard.distributed_table t "
	       "ON a.attrelid = t.logicalrelid AND a.attname = t.distribution_column WHERE t.logicalrelid = $1",
	       {OidArg(relid)});
	bool is_null;
	Oid collation = DatumGetObjectId(SpiValue(0, 1, &is_null));

	int32 hash = DatumHash(value, value_type, collation);
	int index = core::ShardIndexForHash(hash, shard_count);
	SpiRun("SELECT shardid FROM fdwshard.shard WHERE logicalrelid = $1 AND shard_index = $2",
	       {OidArg(relid), Int4Arg(index)});
	int64 shardid = SpiInt8(0, 1);
	SPI_finish();
	return shardid;
}

} // namespace

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(get_shard_id_for_distribution_column);

	/* get_shard_id_for_distribution_column(table_name regclass, value anyelement) RETURNS bigint */
	Datum get_shard_id_for_distribution_column(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    if (PG_ARGISNULL(0))
				    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("table_name must not be NULL")));
			    if (PG_ARGISNULL(1))
				    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				                    errmsg("a NULL distribution value has no shard")));
			    PG_RETURN_INT64(fdwshard::ShardIdForValue(PG_GETARG_OID(0), PG_GETARG_DATUM(1),
			                                              get_fn_expr_argtype(fcinfo->flinfo, 1)));
		    });
	}
}
