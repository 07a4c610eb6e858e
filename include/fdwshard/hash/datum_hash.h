/* Hashing PostgreSQL datums into the shard hash space, equal under the type's "=" means equal hash. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/* True when values of typid can be hashed (fast path or a hash opclass to fall back on). */
bool TypeIsHashable(Oid typid);

/* The hash of a non-null value of type typid compared under collation. */
int32 DatumHash(Datum value, Oid typid, Oid collation);

/*
 * Type a distribution column is grouped by for co-location: types whose equal values hash
 * equal share a class (int2/int4/int8 are all int8; varchar is text).
 */
Oid HashClassType(Oid typid);

/* OID of pg_catalog.fdwshard_hash(anyelement), or InvalidOid before CREATE EXTENSION. Cached. */
Oid HashFunctionOid(void);

/* Registers the syscache callback that keeps HashFunctionOid() fresh. */
void InitDatumHash(void);

} // namespace fdwshard
