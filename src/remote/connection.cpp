/* Remote commands through postgres_fdw's connection cache (see remote/connection.h). */
#include "fdwshard/remote/connection.h"

#include "fdwshard/remote/connection_budget.h"
#include "fdwshard/remote/idle_connections.h"
#include "fdwshard/remote/node_health.h"
#include "fdwshard/remote/node_wait.h"
#include "fdwshard/transaction/remote_isolation.h"
#include "fdwshard/transaction/two_phase.h"

/* postgres_fdw's exported connection API (contrib/postgres_fdw/postgres_fdw.h, PostgreSQL 15). */
extern "C"
{
#include "foreign/fdwapi.h"
#include "storage/proc.h"

	typedef struct PgFdwConnState PgFdwConnState;
	typedef PGconn *(*GetConnectionFn)(UserMapping *user, bool will_prep_stmt, PgFdwConnState **state);
	typedef PGresult *(*ExecQueryFn)(PGconn *conn, const char *query, PgFdwConnState *state);
	typedef void (*ReportErrorFn)(int elevel, PGresult *res, PGconn *conn, bool clear, const char *sql);
	typedef PGresult *(*GetResultFn)(PGconn *conn, const char *query);
	typedef int (*SetTransmissionModesFn)(void);
	typedef void (*ResetTransmissionModesFn)(int nestlevel);

	/* postgres_fdw.h, PostgreSQL 15: an async foreign scan may still await its result on the connection. */
	struct PgFdwConnState
	{
		void *pendingAreq;
	};
}

namespace fdwshard::remote
{

namespace
{

/* Resolved once per backend from postgres_fdw.so; never reset (the library stays loaded). */
GetConnectionFn get_connection = nullptr;
ExecQueryFn exec_query = nullptr;
ReportErrorFn report_error = nullptr;
GetResultFn get_result = nullptr;
SetTransmissionModesFn set_transmission_modes_fn = nullptr;
ResetTransmissionModesFn reset_transmission_modes_fn = nullptr;
PGFunction disconnect_server = nullptr;
PGFunction disconnect_all = nullptr;

/* A postgres_fdw connection this backend counts in the connection budget. */
struct HeldConnection
{
	Oid user_mapping; /* hash key */
	Oid serverid;
	BudgetSlot slot;
	LocalTransactionId used_lxid;    /* the last local transaction that used it */
	LocalTransactionId written_lxid; /* the last local transaction that may have written through it */
	PGconn *conn;                    /* as postgres_fdw handed it out in used_lxid */
	bool open;                       /* postgres_fdw may hold a connection: not closed by us since its last use */
	TimestampTz last_used;           /* when a statement last asked for it */
	LocalTransactionId touched_lxid; /* the local transaction that last asked for it (used or counted for a plan) */
};

/* Owned by this file for the life of the backend. */
HTAB *held_connections = NULL;

/* Characters of a batch of statements an error's context shows. */
constexpr int kShownBatchLength = 400;

void
LoadPostgresFdw()
{
	if (get_connection != nullptr)
		return;
	exec_query = (ExecQueryFn) load_external_function("$libdir/postgres_fdw", "pgfdw_exec_query", true, NULL);
	report_error = (ReportErrorFn) load_external_function("$libdir/postgres_fdw", "pgfdw_report_error", true, NULL);
	get_result = (GetResultFn) load_external_function("$libdir/postgres_fdw", "pgfdw_get_result", true, NULL);
	set_transmission_modes_fn =
	    (SetTransmissionModesFn) load_external_function("$libdir/postgres_fdw", "set_transmission_modes", true, NULL);
	reset_transmission_modes_fn = (ResetTransmissionModesFn) load_external_function(
	    "$libdir/postgres_fdw", "reset_transmission_modes", true, NULL);
	disconnect_server =
	    (PGFunction) load_external_function("$libdir/postgres_fdw", "postgres_fdw_disconnect", true, NULL);
	disconnect_all =
	    (PGFunction) load_external_function("$libdir/postgres_fdw", "postgres_fdw_disconnect_all", true, NULL);
	/* Set last: it marks the others as loaded. */
	get_connection = (GetConnectionFn) load_external_function("$libdir/postgres_fdw", "GetConnection", true, NULL);
}

/* Whether this transaction uses a postgres_fdw connection other than umid's. */
bool
HoldsOtherConnections(Oid umid)
{
	HASH_SEQ_STATUS status;
	HeldConnection *held;
	bool holds = false;

	hash_seq_init(&status, held_connections);
	while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
		holds = holds || (held->user_mapping != umid && held->slot >= 0 && held->used_lxid == MyProc->lxid);
	return holds;
}

/*
 * Counts mapping's postgres_fdw connection in the budget before postgres_fdw opens it (waiting
 * for a slot if need be), and notes that this transaction uses it.
 */
void
HoldConnection(UserMapping *mapping, bool use)
{
	if (held_connections == NULL)
	{
		HASHCTL ctl;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(HeldConnection);
		ctl.hcxt = CacheMemoryContext;
		held_connections =
		    hash_create("fdwshard postgres_fdw connections", 8, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	bool found;
	HeldConnection *held = (HeldConnection *) hash_search(held_connections, &mapping->umid, HASH_ENTER, &found);
	if (!found)
	{
		held->serverid = mapping->serverid;
		held->slot = -1;
		held->used_lxid = InvalidLocalTransactionId;
		held->written_lxid = InvalidLocalTransactionId;
		held->conn = NULL;
	}
	/* Marked used first: a wait for the slot must not close what this transaction already holds. */
	if (use)
		held->used_lxid = MyProc->lxid;
	held->open = true;
	held->last_used = GetCurrentTimestamp();
	held->touched_lxid = MyProc->lxid;
	if (held->slot < 0 && worker_connection_limit >= 0)
	{
		BudgetSlot slot = ReserveConnection(mapping->serverid, true, HoldsOtherConnections(mapping->umid));
		/* ReserveConnection may have closed connections and changed the table: look again. */
		held = (HeldConnection *) hash_search(held_connections, &mapping->umid, HASH_ENTER, &found);
		if (!found)
		{
			held->serverid = mapping->serverid;
			held->used_lxid = use ? MyProc->lxid : InvalidLocalTransactionId;
			held->written_lxid = InvalidLocalTransactionId;
			held->conn = NULL;
		}
		held->open = true;
		held->last_used = GetCurrentTimestamp();
		held->touched_lxid = MyProc->lxid;
		held->slot = slot;
	}
}

/* Calls one of postgres_fdw's disconnect functions (arg: a server name, or NULL for none). */
void
CallDisconnect(PGFunction function, const char *arg)
{
	LOCAL_FCINFO(fcinfo, 1);
	InitFunctionCallInfoData(*fcinfo, NULL, arg != NULL ? 1 : 0, InvalidOid, NULL, NULL);
	if (arg != NULL)
	{
		fcinfo->args[0].value = CStringGetTextDatum(arg);
		fcinfo->args[0].isnull = false;
	}
	(void) function(fcinfo);
}

/* Whether GetUserMapping(userid, serverid) would find one (of userid, or PUBLIC's). */
bool
HasUserMapping(Oid userid, Oid serverid)
{
	const Oid users[] = {userid, InvalidOid};
	for (Oid user : users)
	{
		HeapTuple tuple = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(user), ObjectIdGetDatum(serverid));
		if (HeapTupleIsValid(tuple))
		{
			ReleaseSysCache(tuple);
			return true;
		}
	}
	return false;
}

/* A server of fdwshard's (a node), not a user's own postgres_fdw server. */
bool
IsNodeServer(Oid serverid)
{
	return strncmp(GetForeignServer(serverid)->servername, "fdwshard_node_", strlen("fdwshard_node_")) == 0;
}

/*
 * postgres_fdw's connection to serverid for userid, in the local transaction (START TRANSACTION
 * at its first use), noted for abort on a frozen worker and set to the local isolation level.
 * Connecting is bounded by fdwshard.connect_timeout (PGCONNECT_TIMEOUT, see node_wait.cpp) but,
 * in PostgreSQL 15, not interruptible. Whether it could connect goes to the node's health.
 */
PGconn *
Connection(Oid serverid, Oid userid, PgFdwConnState **state, bool writes)
{
	LoadPostgresFdw();
	UserMapping *mapping = GetUserMapping(userid, serverid);
	HoldConnection(mapping, true);
	PGconn *volatile conn = NULL;
	PG_TRY();
	{
		conn = get_connection(mapping, false, state);
	}
	PG_CATCH();
	{
		RecordNodeError(serverid);
		PG_RE_THROW();
	}
	PG_END_TRY();
	RecordNodeOk(serverid);
	NoteFdwConnection(conn);
	HeldConnection *held = (HeldConnection *) hash_search(held_connections, &mapping->umid, HASH_FIND, NULL);
	held->conn = conn;
	if (writes && held->written_lxid != MyProc->lxid)
	{
		held->written_lxid = MyProc->lxid;
		transaction::NoteRemoteWrite();
	}
	transaction::SettleRemoteIsolation(mapping, conn);
	return conn;
}

PGresult *
Run(Oid serverid, const char *sql, PGconn **conn_out)
{
	PgFdwConnState *state = NULL;
	NodeContext context;

	PushNodeContext(&context, serverid, "while waiting for");
	PGconn *conn = Connection(serverid, GetUserId(), &state, true);
	PGresult *result = exec_query(conn, sql, state);
	PopNodeContext(&context);
	ExecStatusType status = PQresultStatus(result);

	/* Only comments or semicolons: there is no statement, and no error for postgres_fdw to report. */
	if (status == PGRES_EMPTY_QUERY)
	{
		PQclear(result);
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("command contains no statement")));
	}
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		report_error(ERROR, result, conn, true, sql);
	*conn_out = conn;
	return result;
}

} // namespace

void
ExecuteOnServer(Oid serverid, const char *sql)
{
	PGconn *conn;

	elog(DEBUG2, "fdwshard: on server %u: %s", serverid, sql);
	PQclear(Run(serverid, sql, &conn));
}

void
ExecuteOnServers(int count, const Oid *servers, const char *const *sqls, int *failed)
{
	PGconn **conns = (PGconn **) palloc0(sizeof(PGconn *) * (count + 1));

	for (int i = 0; i < count; i++)
	{
		PgFdwConnState *state = NULL;
		NodeContext context;

		PushNodeContext(&context, servers[i], "while waiting for");
		conns[i] = Connection(servers[i], GetUserId(), &state, true);
		if (state != NULL && state->pendingAreq != NULL)
			PQclear(exec_query(conns[i], "", state));
		elog(DEBUG2, "fdwshard: on server %u: %s", servers[i], sqls[i]);
		/* The simple protocol: several statements in one message. */
		if (!PQsendQuery(conns[i], sqls[i]))
			report_error(ERROR, NULL, conns[i], false, sqls[i]);
		PopNodeContext(&context);
	}
	for (int i = 0; i < count; i++)
	{
		NodeContext context;

		if (failed != nullptr)
			*failed = i;
		PushNodeContext(&context, servers[i], "while waiting for");
		/* The last result: a batch stops at its first error, whose result comes last. */
		PGresult *result = get_result(conns[i], sqls[i]);
		PopNodeContext(&context);
		ExecStatusType status = PQresultStatus(result);
		if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		{
			/* A batch of many statements is cut in the error's context (the error names the object). */
			const char *shown = sqls[i];
			if (strlen(shown) > kShownBatchLength)
				shown = psprintf("%.*s ...", pg_mbcliplen(shown, strlen(shown), kShownBatchLength), shown);
			report_error(ERROR, result, conns[i], true, shown);
		}
		PQclear(result);
	}
}

char *
QueryOnServer(Oid serverid, const char *sql)
{
	PGconn *conn;
	PGresult *result = Run(serverid, sql, &conn);
	char *answer;

	if (PQresultStatus(result) == PGRES_TUPLES_OK)
		answer = (PQntuples(result) > 0 && PQnfields(result) > 0 && !PQgetisnull(result, 0, 0))
		             ? pstrdup(PQgetvalue(result, 0, 0))
		             : NULL;
	else
		answer = pstrdup(PQcmdStatus(result));
	PQclear(result);
	return answer;
}

PGconn *
SendParams(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values, bool writes)
{
	PgFdwConnState *state = NULL;
	NodeContext context;

	PushNodeContext(&context, serverid, "while waiting for");
	PGconn *conn = Connection(serverid, GetUserId(), &state, writes);
	/* Let a pending asynchronous foreign scan on this connection collect its result first. */
	if (state != NULL && state->pendingAreq != NULL)
		PQclear(exec_query(conn, "", state));

	elog(DEBUG2, "fdwshard: on server %u: %s", serverid, sql);
	if (!PQsendQueryParams(conn, sql, nparams, types, values, NULL, NULL, 0))
		report_error(ERROR, NULL, conn, false, sql);
	PopNodeContext(&context);
	return conn;
}

PGconn *
CopyConnection(Oid serverid)
{
	PgFdwConnState *state = NULL;
	NodeContext context;

	PushNodeContext(&context, serverid, "while waiting for");
	PGconn *conn = Connection(serverid, GetUserId(), &state, true);
	if (state != NULL && state->pendingAreq != NULL)
		PQclear(exec_query(conn, "", state));
	PopNodeContext(&context);
	return conn;
}

PGresult *
FinishParams(Oid serverid, PGconn *conn, const char *sql)
{
	NodeContext context;

	PushNodeContext(&context, serverid, "while waiting for");
	PGresult *result = get_result(conn, sql);
	PopNodeContext(&context);
	ExecStatusType status = PQresultStatus(result);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		report_error(ERROR, result, conn, true, sql);
	return result;
}

PGresult *
ExecuteParams(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values, bool writes)
{
	return FinishParams(serverid, SendParams(serverid, sql, nparams, types, values, writes), sql);
}

void
ReportRemoteError(PGresult *result, PGconn *conn, const char *sql)
{
	LoadPostgresFdw();
	report_error(ERROR, result, conn, true, sql);
	pg_unreachable();
}

int
SetTransmissionModes(void)
{
	LoadPostgresFdw();
	return set_transmission_modes_fn();
}

void
ResetTransmissionModes(int nest_level)
{
	reset_transmission_modes_fn(nest_level);
}

void
SettleConnection(Oid serverid, Oid userid, bool writes)
{
	PgFdwConnState *state = NULL;

	(void) Connection(serverid, userid, &state, writes);
}

int
WrittenConnections(WrittenConnection **connections_out)
{
	*connections_out = NULL;
	if (held_connections == NULL)
		return 0;
	HASH_SEQ_STATUS status;
	HeldConnection *held;
	int count = 0;
	WrittenConnection *connections =
	    (WrittenConnection *) palloc0(sizeof(WrittenConnection) * hash_get_num_entries(held_connections) + 1);

	hash_seq_init(&status, held_connections);
	while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
		if (held->written_lxid == MyProc->lxid && held->used_lxid == MyProc->lxid && held->conn != NULL)
		{
			connections[count].user_mapping = held->user_mapping;
			connections[count].serverid = held->serverid;
			connections[count].conn = held->conn;
			count++;
		}
	*connections_out = connections;
	return count;
}

void
ExecuteOnConnection(PGconn *conn, const char *sql)
{
	LoadPostgresFdw();
	PGresult *result = exec_query(conn, sql, NULL);
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
		report_error(ERROR, result, conn, true, sql);
	PQclear(result);
}

namespace
{

/* The (server, user) pairs of a plan's foreign scans and foreign result relations, each once. */
struct PlanServers
{
	PlannedStmt *stmt;
	List *servers; /* Oid */
	List *users;   /* Oid, same length */
};

void
AddPlanServer(PlanServers *found, Index rtindex, Oid serverid)
{
	if (rtindex == 0 || !OidIsValid(serverid))
		return;
	RangeTblEntry *rte = rt_fetch(rtindex, found->stmt->rtable);
	Oid userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	for (int i = 0; i < list_length(found->servers); i++)
		if (list_nth_oid(found->servers, i) == serverid && list_nth_oid(found->users, i) == userid)
			return;
	found->servers = lappend_oid(found->servers, serverid);
	found->users = lappend_oid(found->users, userid);
}

void
CollectPlanServers(Plan *plan, PlanServers *found)
{
	if (plan == NULL)
		return;
	ListCell *cell;
	List *children = NIL;
	switch (nodeTag(plan))
	{
		case T_ForeignScan:
		{
			ForeignScan *scan = (ForeignScan *) plan;
			AddPlanServer(found, scan->scan.scanrelid > 0 ? scan->scan.scanrelid : bms_next_member(scan->fs_relids, -1),
			              scan->fs_server);
			break;
		}
		case T_ModifyTable:
			foreach (cell, ((ModifyTable *) plan)->resultRelations)
			{
				RangeTblEntry *rte = rt_fetch(lfirst_int(cell), found->stmt->rtable);
				if (rte->relkind == RELKIND_FOREIGN_TABLE)
					AddPlanServer(found, lfirst_int(cell), GetForeignServerIdByRelId(rte->relid));
			}
			break;
		case T_Append:
			children = ((Append *) plan)->appendplans;
			break;
		case T_MergeAppend:
			children = ((MergeAppend *) plan)->mergeplans;
			break;
		case T_BitmapAnd:
			children = ((BitmapAnd *) plan)->bitmapplans;
			break;
		case T_BitmapOr:
			children = ((BitmapOr *) plan)->bitmapplans;
			break;
		case T_SubqueryScan:
			CollectPlanServers(((SubqueryScan *) plan)->subplan, found);
			break;
		case T_CustomScan:
			children = ((CustomScan *) plan)->custom_plans;
			break;
		default:
			break;
	}
	foreach (cell, children)
		CollectPlanServers((Plan *) lfirst(cell), found);
	CollectPlanServers(plan->lefttree, found);
	CollectPlanServers(plan->righttree, found);
}

} // namespace

void
HoldPlanConnections(PlannedStmt *stmt)
{
	/* Without a budget, still noted for fdwshard.idle_connection_timeout. */
	if (worker_connection_limit < 0 && idle_connection_timeout_ms <= 0)
		return;
	/* Plans without foreign tables (local shards, shipped statements, multi-shard scans): nothing to walk. */
	bool has_foreign = false;
	ListCell *cell;
	foreach (cell, stmt->rtable)
		has_foreign = has_foreign || ((RangeTblEntry *) lfirst(cell))->relkind == RELKIND_FOREIGN_TABLE;
	if (!has_foreign)
		return;

	PlanServers found = {stmt, NIL, NIL};
	CollectPlanServers(stmt->planTree, &found);
	foreach (cell, stmt->subplans)
		CollectPlanServers((Plan *) lfirst(cell), &found);
	for (int i = 0; i < list_length(found.servers); i++)
	{
		Oid serverid = list_nth_oid(found.servers, i);
		Oid userid = list_nth_oid(found.users, i);
		/* No user mapping: postgres_fdw raises the error, after the permission checks that go first. */
		if (!IsNodeServer(serverid) || !HasUserMapping(userid, serverid))
			continue;
		LoadPostgresFdw();
		HoldConnection(GetUserMapping(userid, serverid), false);
	}
	list_free(found.servers);
	list_free(found.users);
}

bool
TransactionHoldsFdwConnections(void)
{
	return held_connections != NULL && HoldsOtherConnections(InvalidOid);
}

bool
FdwConnectionUsedInTransaction(Oid serverid, Oid userid)
{
	if (held_connections == NULL || !HasUserMapping(userid, serverid))
		return false;
	Oid umid = GetUserMapping(userid, serverid)->umid;
	HeldConnection *held = (HeldConnection *) hash_search(held_connections, &umid, HASH_FIND, NULL);
	return held != NULL && held->used_lxid == MyProc->lxid;
}

namespace
{

/* postgres_fdw's connections to each server in servers closed, and their budget slots given back. */
void
CloseServers(List *servers)
{
	HASH_SEQ_STATUS status;
	HeldConnection *held;
	ListCell *cell;
	foreach (cell, servers)
	{
		Oid serverid = lfirst_oid(cell);
		if (disconnect_server != nullptr)
			CallDisconnect(disconnect_server, GetForeignServer(serverid)->servername);
		hash_seq_init(&status, held_connections);
		while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
			if (held->serverid == serverid)
			{
				ReleaseConnection(held->slot);
				held->slot = -1;
				held->open = false;
				held->conn = NULL;
			}
	}
}

} // namespace

void
CloseIdleFdwConnections(void)
{
	if (held_connections == NULL)
		return;
	HASH_SEQ_STATUS status;
	HeldConnection *held;

	/* A server can be closed only if this transaction uses none of its connections. */
	List *busy = NIL;
	hash_seq_init(&status, held_connections);
	while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
		if (held->used_lxid == MyProc->lxid)
			busy = list_append_unique_oid(busy, held->serverid);

	List *closed = NIL;
	hash_seq_init(&status, held_connections);
	while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
		if (held->slot >= 0 && ConnectionWanted(held->slot) && !list_member_oid(busy, held->serverid))
			closed = list_append_unique_oid(closed, held->serverid);

	CloseServers(closed);
	list_free(busy);
	list_free(closed);
}

TimestampTz
CloseFdwConnectionsUnusedSince(TimestampTz cutoff, TimestampTz now)
{
	if (held_connections == NULL)
		return 0;
	HASH_SEQ_STATUS status;
	HeldConnection *held;

	/* postgres_fdw closes a server's connections together: a server goes when none of them was used since cutoff. */
	List *recent = NIL;
	TimestampTz oldest = 0;
	hash_seq_init(&status, held_connections);
	while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
		if (held->open && (held->touched_lxid == MyProc->lxid || held->last_used >= cutoff))
			recent = list_append_unique_oid(recent, held->serverid);

	List *closed = NIL;
	hash_seq_init(&status, held_connections);
	while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
	{
		if (!held->open)
			continue;
		if (!list_member_oid(recent, held->serverid))
		{
			closed = list_append_unique_oid(closed, held->serverid);
			continue;
		}
		TimestampTz used = held->touched_lxid == MyProc->lxid ? now : held->last_used;
		if (oldest == 0 || used < oldest)
			oldest = used;
	}

	CloseServers(closed);
	list_free(recent);
	list_free(closed);
	return oldest;
}

void
CloseFdwConnectionsAtTransactionEnd(void)
{
	if (held_connections == NULL || disconnect_all == nullptr)
		return;
	HASH_SEQ_STATUS status;
	HeldConnection *held;
	bool wanted = false;

	hash_seq_init(&status, held_connections);
	while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
		wanted = wanted || ConnectionWanted(held->slot);
	if (!wanted)
		return;
	/* No catalog access here: postgres_fdw_disconnect_all needs none once no connection is in a transaction. */
	CallDisconnect(disconnect_all, NULL);
	hash_seq_init(&status, held_connections);
	while ((held = (HeldConnection *) hash_seq_search(&status)) != NULL)
	{
		ReleaseConnection(held->slot);
		held->slot = -1;
		held->open = false;
		held->conn = NULL;
	}
}

} // namespace fdwshard::remote
