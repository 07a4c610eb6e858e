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

/* Runs sql with args inside the caller's SPI connection; returns SPI_processed. Errors propagate. */
uint64 SpiRun(const char *sql, std::initializer_list<SpiArg> args = {});

/* Column column (1-based) of row row of the last SPI result; is_null is set. */
Datum SpiValue(uint64 row, int column, bool *is_null);
int32 SpiInt4(uint64 row, int column);
int64 SpiInt8(uint64 row, int column);
bool SpiBool(uint64 row, int column);
char *SpiText(uint64 row, int column); /* NULL for SQL NULL; palloc'd in the current context */

} // namespace fdwshard::catalog
