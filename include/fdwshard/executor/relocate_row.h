/* The row trigger that moves rows whose distribution column changed out of their shard. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/* Name of the AFTER UPDATE OF <distribution column> trigger on every distributed table. */
constexpr const char *kRelocateTriggerName = "fdwshard_relocate_row";

/*
 * Moves every row of the shard shard_relid whose distribution column (attnum of the distributed
 * table parent_relid) equals one of values (count distinct values) into its shard: deleted
 * there, inserted through the distributed table, in one statement (SPI) per value, the
 * statement's text built once.
 */
void MoveRowsOutOfShard(Oid shard_relid, Oid parent_relid, AttrNumber attnum, const Datum *values, int count);

} // namespace fdwshard
