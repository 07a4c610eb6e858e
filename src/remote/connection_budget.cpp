/*
 * The connection budget (see remote/connection_budget.h). Every backend of the coordinator
 * opens its own connections to the workers: postgres_fdw's, fdwshard's own and the pool's. A
 * worker refuses clients past its max_connections, so the count of connections to each worker
 * (host and port: databases and their foreign servers share the worker) is kept in shared
 * memory, and a backend that would go past fdwshard.worker_connection_limit waits for one to be
 * given back. Connections are kept between transactions while nobody waits, and closed at the
 * end of the holder's transaction (or while it waits itself) as soon as somebody does.
 */
#include "fdwshard/remote/connection_budget.h"

#include "fdwshard/guard.h"
#include "fdwshard/shared_memory.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/own_connection.h"

extern "C"
{
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace fdwshard::remote
{

int worker_connection_limit = 72;

namespace
{

constexpr int kMaxWorkers = 512;
constexpr int kTargetLength = kWorkerTargetLength;

/* One worker: host:port, as its foreign servers' options give them. */
struct WorkerBudget
{
	char target[kTargetLength]; /* empty: unused entry */
	int in_use;
	int waiters;
};

struct BudgetShared
{
	LWLock *lock;
	ConditionVariable released;
	int worker_count;
	WorkerBudget workers[kMaxWorkers];
};

BudgetShared *shared = NULL;

int connection_wait_timeout_ms = 60000;

/* Slots this backend holds, per worker: given back if the backend exits holding them. */
int held[kMaxWorkers];
bool exit_callback_registered = false;

/* The struct as the server first sets it up (zeroed, with its lock). */
void
InitShared(void *state, LWLock *lock)
{
	BudgetShared *fresh = (BudgetShared *) state;
	fresh->lock = lock;
	ConditionVariableInit(&fresh->released);
}

/* The entry of target, made if missing; -1 when the table is full. Caller holds the lock exclusively. */
int
FindWorker(const char *target)
{
	for (int i = 0; i < shared->worker_count; i++)
		if (strcmp(shared->workers[i].target, target) == 0)
			return i;
	if (shared->worker_count == kMaxWorkers)
		return -1;
	WorkerBudget *worker = &shared->workers[shared->worker_count];
	strlcpy(worker->target, target, kTargetLength);
	worker->in_use = 0;
	worker->waiters = 0;
	return shared->worker_count++;
}

void
ReleaseAllAtExit(int, Datum)
{
	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	bool any = false;
	for (int i = 0; i < kMaxWorkers; i++)
		if (held[i] > 0)
		{
			shared->workers[i].in_use -= held[i];
			held[i] = 0;
			any = true;
		}
	LWLockRelease(shared->lock);
	if (any)
		ConditionVariableBroadcast(&shared->released);
}

/*
 * The limit for a backend: one that already holds connections its transaction uses may go a
 * quarter past it, so that two such backends never wait for each other's slots for good.
 */
int
LimitFor(bool in_transaction)
{
	return in_transaction ? worker_connection_limit + Max(worker_connection_limit / 4, 1) : worker_connection_limit;
}

/* Takes a slot of worker index if the budget allows. */
bool
TryTake(int index, bool in_transaction, bool count_waiter_done)
{
	WorkerBudget *worker = &shared->workers[index];
	bool taken = false;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (worker_connection_limit < 0 || worker->in_use < LimitFor(in_transaction))
	{
		worker->in_use++;
		held[index]++;
		taken = true;
		if (count_waiter_done)
			worker->waiters--;
	}
	LWLockRelease(shared->lock);
	return taken;
}

void
StopWaiting(int index)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->workers[index].waiters--;
	LWLockRelease(shared->lock);
	ConditionVariableCancelSleep();
}

/* Waits until a slot of worker index is free and takes it; raises 53300 after the wait timeout. */
void
WaitForSlot(int index, Oid serverid, bool in_transaction)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->workers[index].waiters++;
	LWLockRelease(shared->lock);

	TimestampTz deadline = connection_wait_timeout_ms > 0
	                           ? TimestampTzPlusMilliseconds(GetCurrentTimestamp(), connection_wait_timeout_ms)
	                           : 0;
	PG_TRY();
	{
		ConditionVariablePrepareToSleep(&shared->released);
		for (;;)
		{
			/* What this backend keeps idle may be what another waits for (and the other way round). */
			CloseIdleOwnConnections(true);
			CloseIdleFdwConnections();
			if (TryTake(index, in_transaction, true))
				break;
			if (deadline != 0 && GetCurrentTimestamp() >= deadline)
				ereport(ERROR,
				        (errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				         errmsg("no connection to server \"%s\" became free within %d ms",
				                GetForeignServer(serverid)->servername, connection_wait_timeout_ms),
				         errdetail("%d connections to worker %s are in use (fdwshard.worker_connection_limit).",
				                   shared->workers[index].in_use, shared->workers[index].target),
				         errhint("Raise fdwshard.worker_connection_limit if the worker's max_connections allows, "
				                 "or fdwshard.connection_wait_timeout.")));
			/* Wake up now and then anyway: a holder may have gone idle without releasing. */
			(void) ConditionVariableTimedSleep(&shared->released, 100, PG_WAIT_EXTENSION);
		}
		ConditionVariableCancelSleep();
	}
	PG_CATCH();
	{
		StopWaiting(index);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * After postgres_fdw's own callback (registered later, at its first connection, so called
 * earlier): its connections are out of their remote transactions, and this backend's idle
 * connections can go to the backends that wait for them.
 */
void
XactCallback(XactEvent event, void *)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_COMMIT &&
	    event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
		return;
	if (!AnyConnectionWanted())
		return;
	CloseIdleOwnConnections(true);
	CloseFdwConnectionsAtTransactionEnd();
}

} // namespace

/* host:port of serverid's worker, as libpq would resolve the server's options (defaults included). */
void
WorkerTarget(Oid serverid, char *target)
{
	ForeignServer *server = GetForeignServer(serverid);
	const char *host = NULL;
	const char *port = NULL;
	ListCell *cell;

	foreach (cell, server->options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		if (strcmp(option->defname, "host") == 0 || (host == NULL && strcmp(option->defname, "hostaddr") == 0))
			host = defGetString(option);
		else if (strcmp(option->defname, "port") == 0)
			port = defGetString(option);
	}
	snprintf(target, kWorkerTargetLength, "%s:%s", host != NULL ? host : "", port != NULL ? port : DEF_PGPORT_STR);
}

BudgetSlot
ReserveConnection(Oid serverid, bool wait, bool in_transaction)
{
	if (shared == NULL || worker_connection_limit < 0)
		return -1;
	if (!exit_callback_registered)
	{
		before_shmem_exit(ReleaseAllAtExit, (Datum) 0);
		exit_callback_registered = true;
	}

	char target[kTargetLength];
	WorkerTarget(serverid, target);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	int index = FindWorker(target);
	LWLockRelease(shared->lock);
	if (index < 0)
		return -1; /* more workers than the table holds: not counted */
	if (TryTake(index, in_transaction, false))
		return index;
	if (!wait)
		return -1;
	WaitForSlot(index, serverid, in_transaction);
	return index;
}

void
ReleaseConnection(BudgetSlot slot)
{
	if (slot < 0 || shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->workers[slot].in_use--;
	held[slot]--;
	bool wanted = shared->workers[slot].waiters > 0;
	LWLockRelease(shared->lock);
	if (wanted)
		ConditionVariableBroadcast(&shared->released);
}

bool
ConnectionWanted(BudgetSlot slot)
{
	/* An unlocked read: a stale answer only delays a release to the next transaction's end. */
	return slot >= 0 && shared != NULL && shared->workers[slot].waiters > 0;
}

bool
AnyConnectionWanted(void)
{
	if (shared == NULL)
		return false;
	for (int i = 0; i < kMaxWorkers; i++)
		if (held[i] > 0 && shared->workers[i].waiters > 0)
			return true;
	return false;
}

void
InitConnectionBudget(void)
{
	DefineCustomIntVariable("fdwshard.worker_connection_limit",
	                        "Connections to each worker from all sessions of this coordinator together.",
	                        "Keep it below the workers' max_connections minus what other clients need. "
	                        "-1: no limit.",
	                        &worker_connection_limit, 72, -1, INT_MAX, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("fdwshard.connection_wait_timeout",
	                        "How long a session waits for a connection to a worker when the budget is spent.",
	                        "0 waits without limit.", &connection_wait_timeout_ms, 60000, 0, INT_MAX, PGC_USERSET,
	                        GUC_UNIT_MS, NULL, NULL, NULL);
	RequestSharedStruct("fdwshard connection budget", sizeof(BudgetShared), InitShared, (void **) &shared);
	/* Here, before postgres_fdw is loaded: called after its callback (see XactCallback). */
	RegisterXactCallback(pg::EntryPoint<XactCallback>::Call, NULL);
}

} // namespace fdwshard::remote
