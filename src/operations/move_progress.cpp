/*
 * Shard moves in progress (see operations/move_progress.h): one slot per moving backend in
 * shared memory, written by its owner only, read by fdwshard.move_progress() from any session.
 */
#include "fdwshard/operations/move_progress.h"

#include "fdwshard/guard.h"
#include "fdwshard/shared_memory.h"

extern "C"
{
#include "funcapi.h"
#include "storage/ipc.h"
#include "utils/tuplestore.h"
}

namespace fdwshard::operations
{

/* Read by fdwshard_move_progress below, outside the namespace. */
namespace internal
{

/* More moves at once than this are not shown (rebalancing makes one at a time). */
constexpr int kSlots = 32;

struct MoveSlot
{
	int pid; /* 0: free */
	Oid database;
	int64 shardid;
	int tables;
	int32 source;
	int32 target;
	char phase[16];
	char table[NAMEDATALEN];
	uint64 rows;
	TimestampTz started;
};

struct MoveShared
{
	LWLock *lock;
	MoveSlot slots[kSlots];
};

MoveShared *shared = NULL;

} // namespace internal

namespace
{

using namespace internal;

MoveSlot *mine = NULL; /* this backend's slot, or NULL */

void
InitShared(void *state, LWLock *lock)
{
	((MoveShared *) state)->lock = lock;
}

void
FreeSlot(void)
{
	if (mine == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	mine->pid = 0;
	LWLockRelease(shared->lock);
	mine = NULL;
}

void
AtTransactionEnd(XactEvent event, void *)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
	    event == XACT_EVENT_PARALLEL_ABORT)
		FreeSlot();
}

void
AtExit(int, Datum)
{
	FreeSlot();
}

} // namespace

void
InitMoveProgress(void)
{
	RequestSharedStruct("fdwshard shard moves", sizeof(MoveShared), InitShared, (void **) &shared);
	RegisterXactCallback(AtTransactionEnd, NULL);
}

void
BeginMoveProgress(int64 shardid, int tables, int32 source, int32 target)
{
	if (shared == NULL)
		return;
	static bool exit_registered = false;
	if (!exit_registered)
	{
		before_shmem_exit(AtExit, (Datum) 0);
		exit_registered = true;
	}
	FreeSlot();
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < kSlots && mine == NULL; i++)
		if (shared->slots[i].pid == 0)
		{
			mine = &shared->slots[i];
			memset(mine, 0, sizeof(MoveSlot));
			mine->pid = MyProcPid;
			mine->database = MyDatabaseId;
			mine->shardid = shardid;
			mine->tables = tables;
			mine->source = source;
			mine->target = target;
			strlcpy(mine->phase, "starting", sizeof(mine->phase));
			mine->started = GetCurrentTimestamp();
		}
	LWLockRelease(shared->lock);
}

void
SetMovePhase(const char *phase, const char *table)
{
	if (mine == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(mine->phase, phase, sizeof(mine->phase));
	strlcpy(mine->table, table != NULL ? table : "", sizeof(mine->table));
	LWLockRelease(shared->lock);
}

void
AddMovedRows(uint64 rows)
{
	if (mine == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	mine->rows += rows;
	LWLockRelease(shared->lock);
}

void
SetMovedRows(uint64 rows)
{
	if (mine == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	mine->rows = rows;
	LWLockRelease(shared->lock);
}

} // namespace fdwshard::operations

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_move_progress);

	/* fdwshard.move_progress(): every move in progress in this database. */
	Datum fdwshard_move_progress(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    using namespace fdwshard::operations::internal;
			    InitMaterializedSRF(fcinfo, 0);
			    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
			    if (shared == NULL)
				    return (Datum) 0;
			    MoveSlot slots[kSlots];
			    LWLockAcquire(shared->lock, LW_SHARED);
			    memcpy(slots, shared->slots, sizeof(slots));
			    LWLockRelease(shared->lock);
			    for (const auto &slot : slots)
			    {
				    if (slot.pid == 0 || slot.database != MyDatabaseId)
					    continue;
				    Datum values[9];
				    bool nulls[9] = {false};
				    values[0] = Int32GetDatum(slot.pid);
				    values[1] = Int64GetDatum(slot.shardid);
				    values[2] = Int32GetDatum(slot.tables);
				    values[3] = Int32GetDatum(slot.source);
				    values[4] = Int32GetDatum(slot.target);
				    values[5] = CStringGetTextDatum(slot.phase);
				    values[6] = CStringGetTextDatum(slot.table);
				    nulls[6] = slot.table[0] == '\0';
				    values[7] = Int64GetDatum((int64) slot.rows);
				    values[8] = TimestampTzGetDatum(slot.started);
				    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			    }
			    return (Datum) 0;
		    });
	}
}
