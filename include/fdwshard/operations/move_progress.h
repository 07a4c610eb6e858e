/* Shard moves in progress, in shared memory: what fdwshard.rebalance_progress shows from any session. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::operations
{

/* From _PG_init: the shared slots, and the transaction callback that frees this backend's slot. */
void InitMoveProgress(void);

/*
 * This backend starts moving the shard group of shardid (tables shards) from source to target;
 * its slot is freed when the transaction ends, committed or not. No free slot: not shown.
 */
void BeginMoveProgress(int64 shardid, int tables, int32 source, int32 target);

/* The move's phase ("starting", "copying", "catching up", "switching") and the shard table it works on. */
void SetMovePhase(const char *phase, const char *table);

/* Rows copied so far, over the group's tables: added, or set. */
void AddMovedRows(uint64 rows);
void SetMovedRows(uint64 rows);

} // namespace fdwshard::operations
