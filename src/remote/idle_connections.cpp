/*
 * Connections to workers closed once unused for fdwshard.idle_connection_timeout (see
 * remote/idle_connections.h). A session idle at the client's prompt runs no code of ours, so
 * the timer asks for what PostgreSQL does when a backend must catch up with invalidations: at
 * its next idle moment outside a transaction block the backend runs an empty transaction, and
 * this file's pre-commit callback closes what was unused long enough. The same check runs at
 * every commit, so a busy session closes the connections it stopped using too.
 */
#include "fdwshard/remote/idle_connections.h"

#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/own_connection.h"

extern "C"
{
#include "storage/sinval.h"
#include "utils/timeout.h"
}

namespace fdwshard::remote
{

int idle_connection_timeout_ms = 10000;

namespace
{

/* This backend's timer, registered at its first connection (timeouts registered in _PG_init do not reach backends). */
bool timer_registered = false;
TimeoutId timer_id;

/* Signal handler: only what HandleCatchupInterrupt does (a flag and the latch) is safe here. */
void
TimerFired(void)
{
	HandleCatchupInterrupt();
}

/* Arms the timer for at, unless it fires by then anyway (a setitimer call saved at most commits). */
void
ArmAt(TimestampTz at)
{
	if (!timer_registered)
	{
		timer_id = RegisterTimeout(USER_TIMEOUT, TimerFired);
		timer_registered = true;
	}
	if (!get_timeout_active(timer_id) || get_timeout_finish_time(timer_id) > at)
		enable_timeout_at(timer_id, at);
}

/*
 * Before the local commit, after postgres_fdw's own pre-commit callback (registered later,
 * called earlier): its connections are out of their remote transactions, and the catalog can
 * still be read (a server's name, to close its connections).
 */
void
XactCallback(XactEvent event, void *)
{
	if (idle_connection_timeout_ms <= 0)
		return;
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz cutoff = TimestampTzPlusMilliseconds(now, -idle_connection_timeout_ms);
		TimestampTz own = CloseOwnConnectionsUnusedSince(cutoff, now);
		TimestampTz fdw = CloseFdwConnectionsUnusedSince(cutoff, now);
		TimestampTz oldest = own == 0 ? fdw : (fdw == 0 ? own : Min(own, fdw));
		if (oldest != 0)
			ArmAt(TimestampTzPlusMilliseconds(oldest, idle_connection_timeout_ms));
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		/* No catalog access now: nothing is closed (cutoff 0), the timer does it later. */
		TimestampTz now = GetCurrentTimestamp();
		if (CloseOwnConnectionsUnusedSince(0, now) != 0 || CloseFdwConnectionsUnusedSince(0, now) != 0)
			ArmAt(TimestampTzPlusMilliseconds(now, idle_connection_timeout_ms));
	}
}

} // namespace

void
InitIdleConnections(void)
{
	DefineCustomIntVariable("fdwshard.idle_connection_timeout",
	                        "Closes a session's connections to a worker once unused for this long.",
	                        "Checked outside transactions only, so a session idle at its prompt gives its connections "
	                        "back too. 0 keeps them for the life of the session.",
	                        &idle_connection_timeout_ms, 10000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	/* Before postgres_fdw is loaded: called after its callback (see XactCallback). */
	RegisterXactCallback(pg::EntryPoint<XactCallback>::Call, NULL);
}

} // namespace fdwshard::remote
