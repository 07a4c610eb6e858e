/*
 * Each worker's health as this coordinator last saw it (see remote/node_health.h): when a
 * session last reached it, when and why one last failed to. Kept in shared memory per worker
 * (host:port, as the connection budget counts them), so every session and database of the
 * coordinator sees what any of them saw; empty after a restart ('unknown' until a session tries).
 */
#include "fdwshard/remote/node_health.h"

#include "fdwshard/guard.h"
#include "fdwshard/shared_memory.h"
#include "fdwshard/remote/connection_budget.h"

extern "C"
{
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace fdwshard::remote
{

namespace
{

constexpr int kMaxWorkers = 512;
constexpr int kMessageLength = 256;

struct WorkerHealth
{
	char target[kWorkerTargetLength]; /* host:port; set once, under the exclusive lock */
	pg_atomic_uint64 last_ok;         /* TimestampTz; 0: never. Only ever moves forward, without the lock */
	TimestampTz last_error_at;        /* 0: never; under the lock, with last_error */
	char last_error[kMessageLength];
};

struct HealthShared
{
	LWLock *lock;
	int worker_count; /* entries only ever added: an index stays valid for the life of the server */
	WorkerHealth workers[kMaxWorkers];
};

HealthShared *shared = NULL;

/* serverid -> index in shared->workers. Owned by this file for the life of the backend; emptied when servers change. */
struct KnownServer
{
	Oid serverid; /* hash key */
	int index;
};
HTAB *known_servers = NULL;

/* The struct as the server first sets it up (zeroed, with its lock). */
void
InitShared(void *state, LWLock *lock)
{
	HealthShared *fresh = (HealthShared *) state;
	fresh->lock = lock;
	for (int i = 0; i < kMaxWorkers; i++)
		pg_atomic_init_u64(&fresh->workers[i].last_ok, 0);
}

/* The entry of target (made if missing and create); -1 when absent or the table is full. */
int
FindTarget(const char *target, bool create)
{
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->worker_count; i++)
		if (strcmp(shared->workers[i].target, target) == 0)
		{
			LWLockRelease(shared->lock);
			return i;
		}
	LWLockRelease(shared->lock);
	if (!create)
		return -1;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	int index = -1;
	for (int i = 0; i < shared->worker_count && index < 0; i++)
		if (strcmp(shared->workers[i].target, target) == 0)
			index = i;
	if (index < 0 && shared->worker_count < kMaxWorkers)
	{
		index = shared->worker_count;
		strlcpy(shared->workers[index].target, target, kWorkerTargetLength);
		shared->worker_count++;
	}
	LWLockRelease(shared->lock);
	return index;
}

/* The entry of serverid's worker, made if missing; -1 when the table is full. */
int
FindServer(Oid serverid)
{
	if (known_servers == NULL)
	{
		HASHCTL ctl;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(KnownServer);
		ctl.hcxt = CacheMemoryContext;
		known_servers = hash_create("fdwshard node health", 8, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	KnownServer *known = (KnownServer *) hash_search(known_servers, &serverid, HASH_FIND, NULL);
	if (known != NULL)
		return known->index;

	char target[kWorkerTargetLength];
	WorkerTarget(serverid, target);
	int index = FindTarget(target, true);
	known = (KnownServer *) hash_search(known_servers, &serverid, HASH_ENTER, NULL);
	known->index = index;
	return index;
}

void
InvalidateKnownServers(Datum, int, uint32)
{
	if (known_servers == NULL)
		return;
	HASH_SEQ_STATUS status;
	KnownServer *known;
	hash_seq_init(&status, known_servers);
	while ((known = (KnownServer *) hash_seq_search(&status)) != NULL)
		hash_search(known_servers, &known->serverid, HASH_REMOVE, NULL);
}

void
RecordFailure(int index, const char *message)
{
	if (index < 0)
		return;
	WorkerHealth *worker = &shared->workers[index];
	size_t length = strcspn(message, "\n");
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	worker->last_error_at = GetCurrentTimestamp();
	strlcpy(worker->last_error, message, Min(length + 1, (size_t) kMessageLength));
	LWLockRelease(shared->lock);
}

/* What the view shows of one entry, copied under the lock. */
struct HealthRow
{
	const char *health;
	TimestampTz last_ok; /* 0: never */
	TimestampTz last_error_at;
	char last_error[kMessageLength];
};

/* The row of a worker node by its server's name; NULL server_name: the coordinator itself. */
void
ReadHealth(const char *server_name, HealthRow *row)
{
	memset(row, 0, sizeof(HealthRow));
	row->health = "unknown";
	if (server_name == NULL)
	{
		row->health = "ok";
		row->last_ok = GetCurrentTimestamp();
		return;
	}
	ForeignServer *server = GetForeignServerByName(server_name, true);
	if (server == NULL || shared == NULL)
		return;
	char target[kWorkerTargetLength];
	WorkerTarget(server->serverid, target);
	int index = FindTarget(target, false);
	if (index < 0)
		return;

	WorkerHealth *worker = &shared->workers[index];
	LWLockAcquire(shared->lock, LW_SHARED);
	row->last_ok = (TimestampTz) pg_atomic_read_u64(&worker->last_ok);
	row->last_error_at = worker->last_error_at;
	strlcpy(row->last_error, worker->last_error, kMessageLength);
	LWLockRelease(shared->lock);
	if (row->last_error_at != 0 && row->last_error_at > row->last_ok)
		row->health = "unreachable";
	else if (row->last_ok != 0)
		row->health = "ok";
}

Datum
NodeHealth(FunctionCallInfo fcinfo)
{
	TupleDesc tupdesc;
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("node_health must return a row type")));
	tupdesc = BlessTupleDesc(tupdesc);

	HealthRow row;
	ReadHealth(PG_ARGISNULL(0) ? NULL : NameStr(*PG_GETARG_NAME(0)), &row);
	Datum values[4];
	bool nulls[4] = {false, row.last_ok == 0, row.last_error_at == 0, row.last_error_at == 0};
	values[0] = CStringGetTextDatum(row.health);
	values[1] = TimestampTzGetDatum(row.last_ok);
	values[2] = TimestampTzGetDatum(row.last_error_at);
	values[3] = CStringGetTextDatum(row.last_error);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

} // namespace

void
RecordNodeOk(Oid serverid)
{
	if (shared == NULL)
		return;
	int index = FindServer(serverid);
	if (index < 0)
		return;
	pg_atomic_uint64 *last_ok = &shared->workers[index].last_ok;
	uint64 now = (uint64) GetCurrentTimestamp();
	uint64 seen = pg_atomic_read_u64(last_ok);
	/* Concurrent sessions: keep the latest. A failed exchange reloads seen. */
	while (seen < now && !pg_atomic_compare_exchange_u64(last_ok, &seen, now))
	{
	}
}

void
RecordNodeFailure(Oid serverid, const char *message)
{
	if (shared != NULL)
		RecordFailure(FindServer(serverid), message);
}

void
RecordNodeFailureAt(const char *target, const char *message)
{
	if (shared != NULL)
		RecordFailure(FindTarget(target, true), message);
}

void
RecordNodeError(Oid serverid)
{
	if (shared == NULL || ERRCODE_TO_CATEGORY(geterrcode()) != ERRCODE_CONNECTION_EXCEPTION)
		return;
	/* CopyErrorData may not run in ErrorContext (where error context callbacks run). */
	MemoryContext caller_context = MemoryContextSwitchTo(TopMemoryContext);
	ErrorData *edata = CopyErrorData();
	const char *message = edata->detail != NULL ? edata->detail : edata->message;
	RecordNodeFailure(serverid, message != NULL ? message : "connection failure");
	FreeErrorData(edata);
	MemoryContextSwitchTo(caller_context);
}

void
InitNodeHealth(void)
{
	RequestSharedStruct("fdwshard node health", sizeof(HealthShared), InitShared, (void **) &shared);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, InvalidateKnownServers, (Datum) 0);
}

} // namespace fdwshard::remote

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_node_health);

	/*
	 * fdwshard.node_health(server_name name) RETURNS (health, last_ok, last_error_at, last_error):
	 * the node of that server as this coordinator last saw it; NULL: the coordinator ('ok').
	 */
	Datum fdwshard_node_health(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry([&]() -> Datum { return fdwshard::remote::NodeHealth(fcinfo); });
	}
}
