/* get_shard_id_for_distribution_column: which shard holds a value. */
#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"

namespace fdwshard
{

namespace
{

/*
 * The value as the distribution column stores it: coerced as an assignment would (int8 or
 * numeric 6.0 to int4, say), or refused like INSERT refuses it, so a value and the row that
 * holds it always hash alike.
 */
Datum
ValueAsColumnType(Datum value, Oid value_type, Oid column_type, int32 column_typmod, const char *column,
                  const char *table)
{
	if (value_type == column_type)
		return value;
	int16 typlen;
	bool typbyval;
	get_typlenbyval(value_type, &typlen, &typbyval);
	Node *expr = (Node *) makeConst(value_type, -1, InvalidOid, typlen, value, false, typbyval);
	Node *coerced = coerce_to_target_type(NULL, expr, value_type, column_type, column_typmod, COERCION_ASSIGNMENT,
	                                      COERCE_IMPLICIT_CAST, -1);
	if (coerced == NULL)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
		                errmsg("distribution column \"%s\" of \"%s\" is of type %s but the value is of type %s", column,
		                       table, format_type_be(column_type), format_type_be(value_type)),
		                errhint("Cast the value to %s.", format_type_be(column_type))));

	ExprState *state = ExecInitExpr(expression_planner((Expr *) coerced), NULL);
	ExprContext *econtext = CreateStandaloneExprContext();
	bool is_null;
	Datum result = ExecEvalExprSwitchContext(state, econtext, &is_null);
	if (!is_null && !get_typbyval(column_type))
		result = datumCopy(result, false, get_typlen(column_type));
	FreeExprContext(econtext, true);
	if (is_null)
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("a NULL distribution value has no shard")));
	return result;
}

int64
ShardIdForValue(Oid relid, Datum value, Oid value_type)
{
	const catalog::CachedTable *table = catalog::LookupDistributedTable(relid);
	if (table == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("relation \"%s\" is not a distributed table", get_rel_name(relid))));
	AttrNumber attnum = table->dist_attnum;

	Oid column_type;
	int32 column_typmod;
	Oid collation;
	get_atttypetypmodcoll(relid, attnum, &column_type, &column_typmod, &collation);
	value = ValueAsColumnType(value, value_type, column_type, column_typmod, get_attname(relid, attnum, false),
	                          get_rel_name(relid));
	int32 hash = DatumHash(value, column_type, collation);

	/* Looked up again: the coercion may have processed an invalidation that rebuilt the entry. */
	table = catalog::LookupDistributedTable(relid);
	if (table == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("relation \"%s\" is not a distributed table", get_rel_name(relid))));
	return catalog::ShardForHash(table, hash)->shardid;
}

} // namespace

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(get_shard_id_for_distribution_column);

	/* get_shard_id_for_distribution_column(table_name regclass, value "any") RETURNS bigint: an unknown literal is read
	 * as the column type */
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
