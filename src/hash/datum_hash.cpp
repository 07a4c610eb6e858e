/* Datum hashing: normalised fast paths per type, the type's extended hash function otherwise. */
#include "fdwshard/hash/datum_hash.h"

#include "fdwshard/core/hash.h"
#include "fdwshard/guard.h"

namespace fdwshard
{

namespace
{

enum class HashPath
{
	Integer,
	Float4,
	Float8,
	Numeric,
	Varlena, /* text, varchar, bytea: the bytes themselves */
	BpChar,  /* trailing blanks are insignificant */
	Name,
	Uuid,
	Bool,
	Date,
	Timestamp, /* timestamp and timestamptz */
	Extended   /* the type's own extended hash support function */
};

/* Owned by the backend; reset by the PROCOID syscache callback when functions change. */
Oid hash_function_oid = InvalidOid;
bool hash_function_oid_valid = false;

void
InvalidateHashFunctionOid(Datum, int, uint32)
{
	hash_function_oid_valid = false;
}

bool
CollationIsDeterministic(Oid collation)
{
	return !OidIsValid(collation) || collation == DEFAULT_COLLATION_OID || collation == C_COLLATION_OID ||
	       get_collation_isdeterministic(collation);
}

HashPath
ChooseHashPath(Oid typid, Oid collation)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return HashPath::Integer;
		case FLOAT4OID:
			return HashPath::Float4;
		case FLOAT8OID:
			return HashPath::Float8;
		case NUMERICOID:
			return HashPath::Numeric;
		case TEXTOID:
		case VARCHAROID:
			return CollationIsDeterministic(collation) ? HashPath::Varlena : HashPath::Extended;
		case BPCHAROID:
			return CollationIsDeterministic(collation) ? HashPath::BpChar : HashPath::Extended;
		case NAMEOID:
			return CollationIsDeterministic(collation) ? HashPath::Name : HashPath::Extended;
		case BYTEAOID:
			return HashPath::Varlena;
		case UUIDOID:
			return HashPath::Uuid;
		case BOOLOID:
			return HashPath::Bool;
		case DATEOID:
			return HashPath::Date;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return HashPath::Timestamp;
		default:
			return HashPath::Extended;
	}
}

int32
HashExtended(Datum value, Oid typid, Oid collation)
{
	TypeCacheEntry *type = lookup_type_cache(typid, TYPECACHE_HASH_EXTENDED_PROC_FINFO);

	if (!OidIsValid(type->hash_extended_proc))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
		                errmsg("could not identify a hash function for type %s", format_type_be(typid)),
		                errhint("A distribution column needs a type with a hash operator class.")));

	Datum hash = FunctionCall2Coll(&type->hash_extended_proc_finfo, collation, value, UInt64GetDatum(0));
	return core::FoldHash(DatumGetUInt64(hash));
}

} // namespace

bool
TypeIsHashable(Oid typid)
{
	typid = getBaseType(typid);
	if (ChooseHashPath(typid, InvalidOid) != HashPath::Extended)
		return true;
	return OidIsValid(lookup_type_cache(typid, TYPECACHE_HASH_EXTENDED_PROC)->hash_extended_proc);
}

int32
DatumHash(Datum value, Oid typid, Oid collation)
{
	HashPath path = ChooseHashPath(typid, collation);

	/* Per-row path (tuple routing): builtin types skip the syscache; only domains are resolved. */
	if (path == HashPath::Extended)
	{
		Oid base_type = getBaseType(typid);
		if (base_type != typid)
			return DatumHash(value, base_type, collation);
	}

	switch (path)
	{
		case HashPath::Integer:
			if (typid == INT2OID)
				return core::HashInt64(DatumGetInt16(value));
			if (typid == INT4OID)
				return core::HashInt64(DatumGetInt32(value));
			return core::HashInt64(DatumGetInt64(value));
		case HashPath::Float4:
			return core::HashDouble(DatumGetFloat4(value));
		case HashPath::Float8:
			return core::HashDouble(DatumGetFloat8(value));
		case HashPath::Numeric:
		{
			char *text = DatumGetCString(DirectFunctionCall1(numeric_out, value));
			/* Unguarded: normalisation only copies characters and cannot ereport. */
			std::string normal = core::NormalizeDecimalText(text);
			return core::HashBytes(normal.data(), normal.size());
		}
		case HashPath::Varlena:
		{
			struct varlena *bytes = PG_DETOAST_DATUM_PACKED(value);
			return core::HashBytes(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
		}
		case HashPath::BpChar:
		{
			struct varlena *bytes = PG_DETOAST_DATUM_PACKED(value);
			const char *data = VARDATA_ANY(bytes);
			size_t length = VARSIZE_ANY_EXHDR(bytes);

			while (length > 0 && data[length - 1] == ' ')
				length--;
			return core::HashBytes(data, length);
		}
		case HashPath::Name:
		{
			const char *name = NameStr(*DatumGetName(value));
			return core::HashBytes(name, strlen(name));
		}
		case HashPath::Uuid:
			return core::HashBytes(DatumGetUUIDP(value)->data, UUID_LEN);
		case HashPath::Bool:
			return core::HashInt64(DatumGetBool(value) ? 1 : 0);
		case HashPath::Date:
			return core::HashInt64(DatumGetInt32(value));
		case HashPath::Timestamp:
			return core::HashInt64(DatumGetInt64(value));
		case HashPath::Extended:
			return HashExtended(value, typid, collation);
	}
	pg_unreachable();
}

Oid
HashClassType(Oid typid)
{
	typid = getBaseType(typid);
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return INT8OID;
		case VARCHAROID:
			return TEXTOID;
		default:
			return typid;
	}
}

Oid
HashFunctionOid(void)
{
	if (!hash_function_oid_valid)
	{
		Oid argtypes[1] = {ANYELEMENTOID};
		List *name = list_make2(makeString(pstrdup("pg_catalog")), makeString(pstrdup("fdwshard_hash")));

		hash_function_oid = LookupFuncName(name, 1, argtypes, true);
		hash_function_oid_valid = true;
	}
	return hash_function_oid;
}

void
InitDatumHash(void)
{
	CacheRegisterSyscacheCallback(PROCOID, InvalidateHashFunctionOid, (Datum) 0);
}

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_hash);

	/* fdwshard_hash(anyelement) RETURNS int4: the shard hash of a value (STRICT). */
	Datum fdwshard_hash(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    Oid typid = get_fn_expr_argtype(fcinfo->flinfo, 0);

			    if (!OidIsValid(typid))
				    ereport(ERROR, (errcode(ERRCODE_INDETERMINATE_DATATYPE),
				                    errmsg("could not determine the type of the value to hash")));
			    PG_RETURN_INT32(fdwshard::DatumHash(PG_GETARG_DATUM(0), typid, PG_GET_COLLATION()));
		    });
	}
}
