/* SPI helpers for catalog work (see catalog/spi.h). */
#include "fdwshard/catalog/spi.h"

namespace fdwshard::catalog
{

SpiArg
Int4Arg(int32 value)
{
	return SpiArg{INT4OID, Int32GetDatum(value), false};
}

SpiArg
Int8Arg(int64 value)
{
	return SpiArg{INT8OID, Int64GetDatum(value), false};
}

SpiArg
OidArg(Oid value)
{
	return SpiArg{OIDOID, ObjectIdGetDatum(value), false};
}

SpiArg
TextArg(const char *value)
{
	if (value == NULL)
		return SpiArg{TEXTOID, (Datum) 0, true};
	return SpiArg{TEXTOID, CStringGetTextDatum(value), false};
}

SpiArg
BoolArg(bool value)
{
	return SpiArg{BOOLOID, BoolGetDatum(value), false};
}

namespace
{

SpiArg
ArrayArg(const Datum *values, int count, Oid array_type, Oid element_type, int16 length, bool by_value, char align)
{
	ArrayType *array = construct_array((Datum *) values, count, element_type, length, by_value, align);
	return SpiArg{array_type, PointerGetDatum(array), false};
}

} // namespace

SpiArg
Int8ArrayArg(const int64 *values, int count)
{
	Datum *datums = (Datum *) palloc0(sizeof(Datum) * (count + 1));
	for (int i = 0; i < count; i++)
		datums[i] = Int64GetDatum(values[i]);
	return ArrayArg(datums, count, INT8ARRAYOID, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

SpiArg
Int4ArrayArg(const int32 *values, int count)
{
	Datum *datums = (Datum *) palloc0(sizeof(Datum) * (count + 1));
	for (int i = 0; i < count; i++)
		datums[i] = Int32GetDatum(values[i]);
	return ArrayArg(datums, count, INT4ARRAYOID, INT4OID, sizeof(int32), true, TYPALIGN_INT);
}

SpiArg
OidArrayArg(const Oid *values, int count)
{
	Datum *datums = (Datum *) palloc0(sizeof(Datum) * (count + 1));
	for (int i = 0; i < count; i++)
		datums[i] = ObjectIdGetDatum(values[i]);
	return ArrayArg(datums, count, OIDARRAYOID, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
}

uint64
SpiRun(const char *sql, std::initializer_list<SpiArg> args)
{
	int nargs = (int) args.size();
	Oid *types = (Oid *) palloc0(sizeof(Oid) * (nargs + 1));
	Datum *values = (Datum *) palloc0(sizeof(Datum) * (nargs + 1));
	char *nulls = (char *) palloc0(nargs + 1);
	int i = 0;

	for (const SpiArg &arg : args)
	{
		types[i] = arg.type;
		values[i] = arg.value;
		nulls[i] = arg.is_null ? 'n' : ' ';
		i++;
	}

	int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "fdwshard: SPI failed (%s) running: %s", SPI_result_code_string(rc), sql);
	return SPI_processed;
}

Datum
SpiValue(uint64 row, int column, bool *is_null)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, is_null);
}

int32
SpiInt4(uint64 row, int column)
{
	bool is_null;
	Datum value = SpiValue(row, column, &is_null);
	return is_null ? 0 : DatumGetInt32(value);
}

int64
SpiInt8(uint64 row, int column)
{
	bool is_null;
	Datum value = SpiValue(row, column, &is_null);
	return is_null ? 0 : DatumGetInt64(value);
}

bool
SpiBool(uint64 row, int column)
{
	bool is_null;
	Datum value = SpiValue(row, column, &is_null);
	return !is_null && DatumGetBool(value);
}

char *
SpiText(uint64 row, int column)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column);
}

Oid
CatalogOwner(void)
{
	Oid owner = InvalidOid;
	ScanKeyData key;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum("fdwshard"));
	Relation rel = table_open(ExtensionRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	HeapTuple tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(owner))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("extension \"fdwshard\" is not installed in this database"),
		                errhint("Run CREATE EXTENSION fdwshard CASCADE as a superuser.")));
	return owner;
}

CatalogOwnerState
EnterCatalogOwner(void)
{
	CatalogOwnerState saved;
	Oid owner = CatalogOwner();

	GetUserIdAndSecContext(&saved.user, &saved.security_context);
	/* A search_path of the caller's could put their own operators into the catalog statements. */
	saved.guc_nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
	                         false);
	SetUserIdAndSecContext(owner, saved.security_context | SECURITY_LOCAL_USERID_CHANGE);
	return saved;
}

void
LeaveCatalogOwner(const CatalogOwnerState &saved, bool success)
{
	/* On error the (sub)transaction abort would restore both too; doing it here keeps it local. */
	SetUserIdAndSecContext(saved.user, saved.security_context);
	AtEOXact_GUC(success, saved.guc_nest_level);
}

uint64
CatalogWrite(const char *sql, std::initializer_list<SpiArg> args)
{
	uint64 processed = 0;

	AsCatalogOwner([&]() { processed = SpiRun(sql, args); });
	return processed;
}

} // namespace fdwshard::catalog
