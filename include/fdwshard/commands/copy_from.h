/* COPY FROM into a distributed table: rows parsed and hashed here, streamed to their shards in batches. */
#pragma once

#include "fdwshard/commands/utility_hook.h"

namespace fdwshard::commands
{

/*
 * Runs call's COPY ... FROM when its target is a distributed table that the fast path can take
 * (no WHERE clause, no row triggers, no generated columns, no row level security) and returns
 * true; false leaves the statement to PostgreSQL's partitioned-table COPY, which sends a foreign
 * shard one row per round trip. Every row is parsed by PostgreSQL's COPY code against the
 * distributed table (formats, options, defaults, errors naming the line), hashed to its shard and
 * added to the shard's batch; a full batch goes to its worker as one COPY on the transaction's
 * connection (two-phase commit covers it), while this backend goes on parsing, or to a local
 * shard through PostgreSQL's COPY into that table.
 */
bool CopyIntoDistributedTable(UtilityCall *call);

} // namespace fdwshard::commands
