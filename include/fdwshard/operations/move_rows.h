/* The rows of a table being distributed, moved from the old table into the new distributed table's shards. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/*
 * Moves every row of old_relid (the table as it was, locked by the caller) into new_relid (its
 * distributed replacement, shards and catalog rows in place), as INSERT INTO new SELECT FROM
 * old OVERRIDING SYSTEM VALUE would: columns matched by name, stored generated columns computed
 * again by the shards. Rows of a table with a foreign shard go through executor/shard_copy.h
 * (one COPY per full buffer of a shard); a table whose shards are all local is filled by
 * PostgreSQL's tuple routing. Shows progress in pg_stat_progress_copy (relid old_relid, the
 * table the caller named) and, on large tables, NOTICEs. Returns how many rows moved. Needs SPI.
 */
uint64 MoveRowsIntoShards(Oid old_relid, Oid new_relid, const char *name);

} // namespace fdwshard
