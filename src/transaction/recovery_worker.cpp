/* Background recovery (see transaction/recovery_worker.h): a launcher, and one short-lived worker per database. */
#include "fdwshard/transaction/recovery_worker.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/guard.h"
#include "fdwshard/transaction/recovery.h"

extern "C"
{
#include "utils/timeout.h"
}

namespace fdwshard::transaction
{

int recovery_interval_ms = 10000;

namespace
{

/* A database the launcher will visit; copied out of pg_database before its transaction ends. */
struct DatabaseToVisit
{
	Oid oid;
	char name[NAMEDATALEN];
};

/* How long the postmaster waits before it starts a launcher that exited (killed, or failed) again. */
constexpr int kLauncherRestartSeconds = 5;

/*
 * The databases a recovery worker can connect to. Templates are left alone: a backend connected
 * to one makes CREATE DATABASE ... TEMPLATE fail. Databases half-way through DROP DATABASE (marked
 * invalid) and those that refuse connections are skipped too. Allocated in the caller's context.
 */
List *
ListDatabases(void)
{
	MemoryContext caller_context = CurrentMemoryContext;
	List *databases = NIL;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	Relation rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
	HeapTuple tuple;
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);
		if (form->datistemplate || !form->datallowconn || database_is_invalid_form(form))
			continue;

		MemoryContext transaction_context = MemoryContextSwitchTo(caller_context);
		DatabaseToVisit *database = (DatabaseToVisit *) palloc0(sizeof(DatabaseToVisit));
		database->oid = form->oid;
		strlcpy(database->name, NameStr(form->datname), NAMEDATALEN);
		databases = lappend(databases, database);
		MemoryContextSwitchTo(transaction_context);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_context);
	return databases;
}

/*
 * Runs one recovery worker for database and waits until it has exited (a failure there is its
 * own log line, and the postmaster's; the launcher goes on). Returns false when no background
 * worker slot was free: the pass stops and is retried at the next interval.
 */
bool
RunWorkerFor(const DatabaseToVisit *database)
{
	BackgroundWorker worker;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "fdwshard", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "fdwshard_recovery_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "fdwshard recovery worker", BGW_MAXLEN);
	/*
	 * For pg_stat_activity and ps. The postmaster keeps only its ASCII (every other byte becomes
	 * '?'), so a long name cut in the middle of a character is harmless.
	 */
	const char *prefix = "fdwshard recovery worker for database ";
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s%.*s", prefix, (int) (BGW_MAXLEN - 1 - strlen(prefix)), database->name);
	worker.bgw_main_arg = ObjectIdGetDatum(database->oid);
	/* The whole name, as it is, for the worker's log lines (copied as bytes; read before it is connected). */
	StaticAssertStmt(NAMEDATALEN <= BGW_EXTRALEN, "a database name fits in bgw_extra");
	strlcpy(worker.bgw_extra, database->name, BGW_EXTRALEN);
	worker.bgw_notify_pid = MyProcPid;

	BackgroundWorkerHandle *handle;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
		        (errmsg("fdwshard recovery could not start a worker for database \"%s\"", database->name),
		         errdetail("Every background worker slot is in use."),
		         errhint("Raise max_worker_processes. Recovery is tried again after fdwshard.recovery_interval.")));
		return false;
	}
	ereport(DEBUG1, (errmsg("fdwshard recovery launcher started a worker for database \"%s\"", database->name)));
	/* Waits on our latch; SIGTERM (die) ends the launcher from CHECK_FOR_INTERRUPTS in there. */
	if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
		proc_exit(1);
	pfree(handle);
	return true;
}

void
ReloadConfigIfAsked(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* One recovery pass over every database, one worker at a time (a worker can connect to one database only). */
void
VisitDatabases(void)
{
	List *databases = ListDatabases();
	ListCell *cell;

	foreach (cell, databases)
	{
		CHECK_FOR_INTERRUPTS();
		ReloadConfigIfAsked();
		if (recovery_interval_ms == 0)
			return;
		if (!RunWorkerFor((const DatabaseToVisit *) lfirst(cell)))
			return;
	}
}

/*
 * The launcher's life: connected to no database (it reads only the shared pg_database), a pass
 * at start (a coordinator that restarted after a crash must not wait for a client), then one
 * every fdwshard.recovery_interval after the previous one ended. SIGHUP rereads the
 * configuration; SIGTERM ends it (the postmaster starts it again after kLauncherRestartSeconds
 * unless the server is shutting down).
 */
void
RunLauncher(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	/* Owned by the launcher for its whole life; reset after every pass. */
	MemoryContext pass_context =
	    AllocSetContextCreate(TopMemoryContext, "fdwshard recovery launcher", ALLOCSET_DEFAULT_SIZES);
	bool passed_once = false;
	TimestampTz last_pass_end = 0;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		ReloadConfigIfAsked();

		long timeout_ms = -1;
		if (recovery_interval_ms > 0)
		{
			TimestampTz now = GetCurrentTimestamp();
			TimestampTz due = passed_once ? TimestampTzPlusMilliseconds(last_pass_end, recovery_interval_ms) : now;
			if (now >= due)
			{
				MemoryContext old_context = MemoryContextSwitchTo(pass_context);
				VisitDatabases();
				MemoryContextSwitchTo(old_context);
				MemoryContextReset(pass_context);
				passed_once = true;
				last_pass_end = GetCurrentTimestamp();
				continue;
			}
			timeout_ms = TimestampDifferenceMilliseconds(now, due);
		}
		/* Without an interval, sleep until a signal (SIGHUP may set one). */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout_ms >= 0 ? WL_TIMEOUT : 0), timeout_ms,
		                 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
RecoveryErrorContext(void *arg)
{
	errcontext("fdwshard recovery in database \"%s\"", (const char *) arg);
}

/* Whether the current database is one to recover: not (since the launcher listed it) a template, nor invalid. */
bool
DatabaseStillVisitable(void)
{
	HeapTuple tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(tuple))
		return false;
	Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);
	bool visitable = !form->datistemplate && !database_is_invalid_form(form);
	ReleaseSysCache(tuple);
	return visitable;
}

/*
 * One pass in the current database, in a transaction of its own, as the fdwshard extension's
 * owner: the worker itself is the bootstrap superuser, but the workers' user mappings are the
 * owner's (fdwshard_add_node creates them for the user who adds the node). Returns how many
 * prepared transactions it resolved, or -1 when it skipped the database.
 */
constexpr int kPassTimeoutMs = 60000;

int
RecoverCurrentDatabase(const char *dbname)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());

	int resolved = -1;
	if (!DatabaseStillVisitable())
		ereport(DEBUG1, (errmsg("fdwshard recovery skips database \"%s\": it is a template or being dropped", dbname)));
	else if (!OidIsValid(get_extension_oid("fdwshard", true)))
		ereport(DEBUG1, (errmsg("fdwshard recovery skips database \"%s\": fdwshard is not installed", dbname)));
	else
	{
		Oid saved_user;
		int saved_security_context;
		GetUserIdAndSecContext(&saved_user, &saved_security_context);
		SetUserIdAndSecContext(catalog::CatalogOwner(), saved_security_context | SECURITY_LOCAL_USERID_CHANGE);
		pgstat_report_activity(STATE_RUNNING, "fdwshard recovery pass");
		/* A frozen worker must not hold the launcher, and every other database, for good. */
		enable_timeout_after(STATEMENT_TIMEOUT, kPassTimeoutMs);
		resolved = RecoverPreparedTransactions();
		disable_timeout(STATEMENT_TIMEOUT, false);
		/* On error, the transaction's abort puts the user back. */
		SetUserIdAndSecContext(saved_user, saved_security_context);
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return resolved;
}

/*
 * A recovery worker's life: connect to the database the launcher chose, run one pass, exit. An
 * error is logged here with the database's name and ends this worker only (exit code 1; it is
 * never restarted: the launcher's next pass comes back to this database).
 */
void
RunRecoveryWorker(Oid dboid)
{
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	/* No user: the bootstrap superuser (RecoverCurrentDatabase then becomes the extension's owner). */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	const char *dbname = MyBgworkerEntry->bgw_extra; /* the name the launcher listed */

	ErrorContextCallback context;
	context.callback = RecoveryErrorContext;
	context.arg = (void *) dbname;
	context.previous = error_context_stack;
	error_context_stack = &context;

	int resolved = -1;
	PG_TRY();
	{
		/* Entry turns a C++ exception into ereport(ERROR) before it could leave this PG_TRY. */
		resolved = pg::Entry([&]() -> int { return RecoverCurrentDatabase(dbname); });
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		proc_exit(1);
	}
	PG_END_TRY();
	error_context_stack = context.previous;

	if (resolved > 0)
		ereport(LOG, (errmsg_plural("fdwshard recovery resolved %d prepared transaction in database \"%s\"",
		                            "fdwshard recovery resolved %d prepared transactions in database \"%s\"", resolved,
		                            resolved, dbname)));
	else if (resolved == 0)
		ereport(DEBUG1, (errmsg("fdwshard recovery found nothing to resolve in database \"%s\"", dbname)));
	proc_exit(0);
}

} // namespace

void
InitRecoveryWorker(void)
{
	DefineCustomIntVariable("fdwshard.recovery_interval",
	                        "How often the background worker recovers prepared transactions in every database.",
	                        "0 disables background recovery; fdwshard_recover_prepared_transactions() still runs a "
	                        "pass on demand.",
	                        &recovery_interval_ms, 10000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	BackgroundWorker worker;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* Not on a standby: prepared transactions are resolved by the primary's coordinator. */
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = kLauncherRestartSeconds;
	strlcpy(worker.bgw_library_name, "fdwshard", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "fdwshard_recovery_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "fdwshard recovery launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "fdwshard recovery launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

} // namespace fdwshard::transaction

extern "C"
{
	PGDLLEXPORT void fdwshard_recovery_launcher_main(Datum arg);
	PGDLLEXPORT void fdwshard_recovery_worker_main(Datum arg);

	/*
	 * Main functions of the workers (bgw_function_name). A PostgreSQL error with no handler above
	 * becomes FATAL in a background worker and ends the process: the launcher comes back after
	 * bgw_restart_time, a recovery worker at the next pass. Entry keeps C++ exceptions inside.
	 */
	void fdwshard_recovery_launcher_main(Datum arg)
	{
		fdwshard::pg::Entry([]() { fdwshard::transaction::RunLauncher(); });
	}

	void fdwshard_recovery_worker_main(Datum arg)
	{
		fdwshard::pg::Entry([&]() { fdwshard::transaction::RunRecoveryWorker(DatumGetObjectId(arg)); });
	}
}
