/*
 * Remote transactions at the local isolation level (see transaction/remote_isolation.h).
 * postgres_fdw opens every remote transaction at REPEATABLE READ so that the scans of one
 * statement see one snapshot per worker; for a READ COMMITTED client that turns a concurrent
 * update into "could not serialize access" where one server would wait and proceed. So the
 * first thing a READ COMMITTED transaction does on a worker, before any query takes a snapshot
 * there, is SET TRANSACTION ISOLATION LEVEL READ COMMITTED. That is only allowed before the
 * remote transaction's first query, so every way fdwshard reaches a worker settles the
 * connection first: its own remote commands, and the foreign scans and modifications of each
 * plan, right after ExecutorStart opened them (postgres_fdw sends its first query later, at the
 * first row). Settling a connection also notes it for remote/node_wait.cpp, so that an abort
 * on a frozen worker does not wait for it forever, whatever the isolation level.
 */
#include "fdwshard/transaction/remote_isolation.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"

extern "C"
{
#include "storage/proc.h"
}

namespace fdwshard::transaction
{

namespace
{

/* Owned by this file: user mappings whose remote transaction was seen in local transaction tracked_lxid. */
LocalTransactionId tracked_lxid = InvalidLocalTransactionId;
List *seen_mappings = NIL; /* Oid; in TopTransactionContext, so gone with the transaction */

ExecutorStart_hook_type prev_executor_start = NULL;

/* True the first time umid is seen in this local transaction (and records it). */
bool
FirstSight(Oid umid)
{
	if (tracked_lxid != MyProc->lxid)
	{
		seen_mappings = NIL; /* the list went with the previous transaction's memory */
		tracked_lxid = MyProc->lxid;
	}
	if (list_member_oid(seen_mappings, umid))
		return false;
	MemoryContext old_context = MemoryContextSwitchTo(TopTransactionContext);
	seen_mappings = lappend_oid(seen_mappings, umid);
	MemoryContextSwitchTo(old_context);
	return true;
}

/* A server of fdwshard's (a node), not a user's own postgres_fdw server. */
bool
IsNodeServer(Oid serverid)
{
	ForeignServer *server = GetForeignServer(serverid);
	return strncmp(server->servername, "fdwshard_node_", strlen("fdwshard_node_")) == 0;
}

/*
 * Settles serverid's connection for userid (0: the current user), as postgres_fdw picks it;
 * writes: the statement changes data there (two-phase commit counts the worker).
 */
void
SettleServer(Oid serverid, Oid userid, bool writes)
{
	if (!IsNodeServer(serverid))
		return;
	remote::SettleConnection(serverid, OidIsValid(userid) ? userid : GetUserId(), writes);
}

Oid
ServerOf(Relation rel)
{
	return rel != NULL && rel->rd_rel->relkind == RELKIND_FOREIGN_TABLE
	           ? GetForeignTable(RelationGetRelid(rel))->serverid
	           : InvalidOid;
}

/*
 * The distinct servers of a distributed table's remote shards: their connections are settled
 * at every isolation level, so that two-phase commit knows every worker a statement wrote on.
 */
List *
TableServers(Oid relid)
{
	const catalog::CachedTable *table = catalog::LookupDistributedTable(relid);
	if (table == NULL)
		return NIL;
	List *servers = NIL;
	for (int i = 0; i < table->shard_count; i++)
		if (OidIsValid(table->shards[i].serverid))
			servers = list_append_unique_oid(servers, table->shards[i].serverid);
	return servers;
}

/*
 * The connections a plan opened, as (server, user) pairs in order of first appearance, each once:
 * a multi-shard scan has a foreign scan per shard but one connection per worker to settle.
 */
struct PlanConnections
{
	EState *estate;
	List *servers; /* Oid */
	List *users;   /* Oid, same length: checkAsUser (0: the current user) */
	List *writes;  /* int, same length: 1 when the plan changes data through the connection */
};

void
AddConnection(PlanConnections *connections, Oid serverid, Oid userid, bool writes)
{
	for (int i = 0; i < list_length(connections->servers); i++)
		if (list_nth_oid(connections->servers, i) == serverid && list_nth_oid(connections->users, i) == userid)
		{
			if (writes)
				list_nth_cell(connections->writes, i)->int_value = 1;
			return;
		}
	connections->servers = lappend_oid(connections->servers, serverid);
	connections->users = lappend_oid(connections->users, userid);
	connections->writes = lappend_int(connections->writes, writes ? 1 : 0);
}

/* Foreign scans, direct modifications and foreign result relations the executor just opened. */
bool
CollectPlanConnections(PlanState *planstate, void *context)
{
	PlanConnections *connections = (PlanConnections *) context;
	EState *estate = connections->estate;

	if (planstate == NULL)
		return false;
	if (IsA(planstate, ForeignScanState))
	{
		ForeignScan *scan = (ForeignScan *) planstate->plan;
		Index rtindex = scan->scan.scanrelid > 0 ? scan->scan.scanrelid : bms_next_member(scan->fs_relids, -1);
		if (rtindex > 0 && OidIsValid(scan->fs_server))
			AddConnection(connections, scan->fs_server, exec_rt_fetch(rtindex, estate)->checkAsUser,
			              scan->operation != CMD_SELECT);
	}
	else if (IsA(planstate, ModifyTableState))
	{
		ModifyTableState *modify = (ModifyTableState *) planstate;
		for (int i = 0; i < modify->mt_nrels; i++)
		{
			ResultRelInfo *info = &modify->resultRelInfo[i];
			Oid serverid = ServerOf(info->ri_RelationDesc);
			if (OidIsValid(serverid))
				AddConnection(connections, serverid, exec_rt_fetch(info->ri_RangeTableIndex, estate)->checkAsUser,
				              true);
		}
		/* Rows routed into foreign shards open their connections mid-statement: settle them all now. */
		if (modify->rootResultRelInfo != NULL &&
		    modify->rootResultRelInfo->ri_RelationDesc->rd_rel->relkind == RELKIND_PARTITIONED_TABLE &&
		    (modify->operation == CMD_INSERT || modify->operation == CMD_UPDATE))
		{
			ListCell *cell;
			foreach (cell, TableServers(RelationGetRelid(modify->rootResultRelInfo->ri_RelationDesc)))
				AddConnection(connections, lfirst_oid(cell), InvalidOid, true);
		}
	}
	return planstate_tree_walker(
	    planstate, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(CollectPlanConnections)), context);
}

void
SettleExecutorStart(QueryDesc *query_desc, int eflags)
{
	/* postgres_fdw connects in ExecutorStart: count those connections in the budget first. */
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		remote::HoldPlanConnections(query_desc->plannedstmt);
	if (prev_executor_start != NULL)
		prev_executor_start(query_desc, eflags);
	else
		standard_ExecutorStart(query_desc, eflags);

	/*
	 * At every isolation level: settling also hands each connection to remote/node_wait.cpp, which
	 * bounds the abort of a statement stuck on a frozen worker.
	 */
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) || query_desc->planstate == NULL)
		return;
	/*
	 * Plans without foreign tables (local shards, shipped statements) need nothing: a quick look
	 * first. A partitioned table may route rows into foreign partitions that are not in the range table.
	 */
	bool has_foreign = false;
	ListCell *cell;
	foreach (cell, query_desc->plannedstmt->rtable)
	{
		char relkind = ((RangeTblEntry *) lfirst(cell))->relkind;
		if (relkind == RELKIND_FOREIGN_TABLE || relkind == RELKIND_PARTITIONED_TABLE)
		{
			has_foreign = true;
			break;
		}
	}
	if (!has_foreign)
		return;
	PlanConnections connections = {query_desc->estate, NIL, NIL, NIL};
	(void) CollectPlanConnections(query_desc->planstate, &connections);
	for (int i = 0; i < list_length(connections.servers); i++)
		SettleServer(list_nth_oid(connections.servers, i), list_nth_oid(connections.users, i),
		             list_nth_int(connections.writes, i) != 0);
	list_free(connections.servers);
	list_free(connections.users);
	list_free(connections.writes);
}

void
ExecutorStartHook(QueryDesc *query_desc, int eflags)
{
	pg::Entry([&] { SettleExecutorStart(query_desc, eflags); });
}

void
SettleRelation(RangeVar *relation, bool writes)
{
	Oid relid = RangeVarGetRelid(relation, NoLock, true);
	if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE)
		SettleServer(GetForeignTable(relid)->serverid, InvalidOid, writes); /* a foreign shard named directly */
	else if (OidIsValid(relid))
	{
		ListCell *cell;
		foreach (cell, TableServers(relid))
			SettleServer(lfirst_oid(cell), InvalidOid, writes);
	}
}

} // namespace

void
SettleRemoteIsolation(UserMapping *mapping, PGconn *conn)
{
	if (XactIsoLevel != XACT_READ_COMMITTED || !FirstSight(mapping->umid) || IsSubTransaction())
		return;
	/* With remote estimates postgres_fdw queries the worker while planning, before we see the connection. */
	ListCell *cell;
	foreach (cell, GetForeignServer(mapping->serverid)->options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		if (strcmp(option->defname, "use_remote_estimate") == 0 && defGetBoolean(option))
			return;
	}
	remote::ExecuteOnConnection(conn, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
}

void
SettleForUtility(Node *parsetree)
{
	ListCell *cell;
	switch (nodeTag(parsetree))
	{
		case T_CopyStmt: /* COPY FROM routes rows into foreign shards, opening their connections */
			if (((CopyStmt *) parsetree)->is_from && ((CopyStmt *) parsetree)->relation != NULL)
				SettleRelation(((CopyStmt *) parsetree)->relation, true);
			break;
		case T_TruncateStmt: /* postgres_fdw truncates foreign shards on its connections */
			foreach (cell, ((TruncateStmt *) parsetree)->relations)
				SettleRelation((RangeVar *) lfirst(cell), true);
			break;
		case T_VacuumStmt: /* ANALYZE samples foreign shards on postgres_fdw's connections */
			foreach (cell, ((VacuumStmt *) parsetree)->rels)
			{
				VacuumRelation *vrel = (VacuumRelation *) lfirst(cell);
				if (vrel->relation != NULL)
					SettleRelation(vrel->relation, false);
			}
			break;
		default:
			break;
	}
}

void
InitRemoteIsolation(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = ExecutorStartHook;
}

} // namespace fdwshard::transaction
