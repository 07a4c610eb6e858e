/* Small helpers over SPI for catalog reads and writes in operations (never on the hot path). */
#pragma once

#include "fdwshard/pg.h"

#include <initializer_list>

namespace fdwshard::catalog
{

/* One SPI parameter: its type and value (NULL when is_null). */
struct SpiArg
{
	Oid type;
	Datum value;
	bool is_null;
};

SpiArg Int4Arg(int32 value);
SpiArg Int8Arg(int64 value);
SpiArg OidArg(Oid value);
SpiArg TextArg(const char *value); /* NULL pointer is SQL NULL */
SpiArg BoolArg(bool value);
/* int8[], int4[] and oid[] of count values: a batch of catalog rows in one statement (unnest). */
SpiArg Int8ArrayArg(const int64 *values, int count);
SpiArg Int4ArrayArg(const int32 *values, int count);
SpiArg OidArrayArg(const Oid *values, int count);

/* Runs sql with args inside the caller's SPI connection; returns SPI_processed. Errors propagate. */
uint64 SpiRun(const char *sql, std::initializer_list<SpiArg> args = {});

/* Column column (1-based) of row row of the last SPI result; is_null is set. */
Datum SpiValue(uint64 row, int column, bool *is_null);
int32 SpiInt4(uint64 row, int column);
int64 SpiInt8(uint64 row, int column);
bool SpiBool(uint64 row, int column);
char *SpiText(uint64 row, int column); /* NULL for SQL NULL; palloc'd in the current context */

/* The role that owns the fdwshard catalog: pg_extension.extowner, the superuser who created the extension. */
Oid CatalogOwner(void);

/* The identity and search_path a catalog write replaces, to put back afterwards. */
struct CatalogOwnerState
{
	Oid user;
	int security_context;
	int guc_nest_level;
};

CatalogOwnerState EnterCatalogOwner(void);
void LeaveCatalogOwner(const CatalogOwnerState &saved, bool success);

/*
 * Runs body as the catalog owner, with search_path pg_catalog, pg_temp: a table's owner who is
 * not a superuser may distribute, change and drop it, and fdwshard records that in its catalog on
 * their behalf. Only fdwshard's own catalog statements belong in body (never the table's
 * expressions, triggers or rows), and body must not throw C++ exceptions. The caller's identity
 * and search_path come back on success and on error.
 */
template <typename Body>
void
AsCatalogOwner(Body &&body)
{
	CatalogOwnerState saved = EnterCatalogOwner();

	PG_TRY();
	{
		body();
	}
	PG_CATCH();
	{
		LeaveCatalogOwner(saved, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	LeaveCatalogOwner(saved, true);
}

/* SpiRun as the catalog owner (AsCatalogOwner): every write to the fdwshard catalog goes through it. */
uint64 CatalogWrite(const char *sql, std::initializer_list<SpiArg> args = {});

} // namespace fdwshard::catalog
