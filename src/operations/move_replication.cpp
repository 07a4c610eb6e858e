/*
 * The logical replication of an online shard move (see operations/move_replication.h): the
 * source publishes the group's shard tables through a slot made beforehand, the target
 * subscribes (its table sync copies the rows, then it streams the changes), and the move waits
 * on both through autocommit node sessions: fresh statistics at every poll, nothing held in the
 * caller's transaction.
 */
#include "fdwshard/operations/move_replication.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/operations/move_progress.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::operations
{

namespace
{

using remote::NodeSessionQuery;
using remote::NodeSessionTry;

/* How often the waits look again. */
constexpr long kPollMs = 1;
constexpr long kCopyPollMs = 50;

void
Sleep(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* A conninfo value: single-quoted, backslash and quote escaped (libpq's rules). */
void
AppendConnValue(StringInfo conninfo, const char *keyword, const char *value)
{
	appendStringInfo(conninfo, "%s%s = '", conninfo->len > 0 ? " " : "", keyword);
	for (const char *c = value; *c != '\0'; c++)
	{
		if (*c == '\\' || *c == '\'')
			appendStringInfoChar(conninfo, '\\');
		appendStringInfoChar(conninfo, *c);
	}
	appendStringInfoChar(conninfo, '\'');
}

/* The subscription reported an apply or copy error: the move fails, pointing at the target's log. */
[[noreturn]] void
ReplicationFailed(const MoveReplication *replication)
{
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
	                errmsg("the online move's replication from node %d to node %d failed", replication->source->nodeid,
	                       replication->target->nodeid),
	                errhint("The server log of node %d says why. mode => 'block_writes' moves without replication.",
	                        replication->target->nodeid)));
}

/* The slots of this move on the source: its own and the table sync slots of its subscription, in this database. */
char *
SlotCondition(const MoveReplication *replication)
{
	char *condition = psprintf("database OPERATOR(pg_catalog.=) pg_catalog.current_database() AND (slot_name "
	                           "OPERATOR(pg_catalog.=) %s",
	                           quote_literal_cstr(replication->name));
	if (replication->subid != NULL)
		condition = psprintf("%s OR slot_name::pg_catalog.text LIKE %s", condition,
		                     quote_literal_cstr(psprintf("pg\\_%s\\_sync\\_%%", replication->subid)));
	return psprintf("%s)", condition);
}

/* "pg_subscription s" of this move in the target's current database. */
char *
SubscriptionCondition(const MoveReplication *replication)
{
	return psprintf("s.subname OPERATOR(pg_catalog.=) %s AND s.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM "
	                "pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())",
	                quote_literal_cstr(replication->name));
}

/* The subscription's OID on the target, if it has one. */
void
ReadSubscriptionId(MoveReplication *replication)
{
	char *subid = NodeSessionQuery(replication->target_session,
	                               psprintf("SELECT s.oid::pg_catalog.text FROM pg_catalog.pg_subscription s WHERE %s",
	                                        SubscriptionCondition(replication)));
	if (subid != NULL)
		replication->subid = subid;
}

/* A value read on node in the caller's transaction: SPI on the coordinator, postgres_fdw's connection on a worker. */
char *
ReadInTransaction(const catalog::Node *node, const char *sql)
{
	if (!node->is_local)
		return remote::QueryOnServer(node->serverid, sql);
	catalog::SpiRun(sql);
	return catalog::SpiText(0, 1);
}

/* Makes the target flush its WAL: a transaction with an xid, committed synchronously. */
void
FlushWal(remote::NodeSession *session)
{
	NodeSessionQuery(session, "BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_catalog.pg_current_xact_id(); "
	                          "COMMIT");
}

} // namespace

char *
SourceConnInfo(const catalog::Node *source)
{
	StringInfoData conninfo;
	initStringInfo(&conninfo);
	AppendConnValue(&conninfo, "host", source->host);
	AppendConnValue(&conninfo, "port", psprintf("%d", source->port));
	AppendConnValue(&conninfo, "dbname", source->dbname);
	const char *user = GetUserNameFromId(GetUserId(), false);
	const char *password = NULL;
	if (!source->is_local)
	{
		ListCell *cell;
		foreach (cell, GetUserMapping(GetUserId(), source->serverid)->options)
		{
			DefElem *option = (DefElem *) lfirst(cell);
			if (strcmp(option->defname, "user") == 0)
				user = defGetString(option);
			else if (strcmp(option->defname, "password") == 0)
				password = defGetString(option);
		}
	}
	AppendConnValue(&conninfo, "user", user);
	if (password != NULL)
		AppendConnValue(&conninfo, "password", password);
	return conninfo.data;
}

MoveReplication *
PrepareReplication(int64 group_shardid, const catalog::Node *source, const catalog::Node *target, List *tables,
                   const char *schema)
{
	MoveReplication *replication = (MoveReplication *) palloc0(sizeof(MoveReplication));
	replication->name = psprintf("fdwshard_move_" INT64_FORMAT, group_shardid);
	replication->marker = remote::QualifiedName(schema, replication->name);
	replication->source = source;
	replication->target = target;
	replication->source_session = remote::OpenNodeSession(source);
	replication->target_session = remote::OpenNodeSession(target);
	replication->tables = tables;
	return replication;
}

bool
ReplicationLeftOver(MoveReplication *replication)
{
	const char *name = quote_literal_cstr(replication->name);
	char *on_source = ReadInTransaction(
	    replication->source,
	    psprintf(
	        "SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name "
	        "OPERATOR(pg_catalog.=) %s AND database OPERATOR(pg_catalog.=) pg_catalog.current_database()) "
	        "OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_publication WHERE pubname "
	        "OPERATOR(pg_catalog.=) %s) OPERATOR(pg_catalog.+) pg_catalog.num_nonnulls(pg_catalog.to_regclass(%s))",
	        name, name, quote_literal_cstr(replication->marker)));
	char *on_target = ReadInTransaction(
	    replication->target,
	    psprintf(
	        "SELECT pg_catalog.count(*) OPERATOR(pg_catalog.+) pg_catalog.num_nonnulls(pg_catalog.to_regclass(%s)) "
	        "FROM pg_catalog.pg_subscription s WHERE %s",
	        quote_literal_cstr(replication->marker), SubscriptionCondition(replication)));
	return strcmp(on_source, "0") != 0 || strcmp(on_target, "0") != 0;
}

void
StartReplication(MoveReplication *replication)
{
	StringInfoData tables;
	initStringInfo(&tables);
	ListCell *cell;
	foreach (cell, replication->tables)
		appendStringInfo(&tables, "%s%s", tables.len > 0 ? ", " : "", (const char *) lfirst(cell));
	appendStringInfo(&tables, ", %s", replication->marker);
	const char *name = quote_identifier(replication->name);

	NodeSessionQuery(replication->source_session, psprintf("CREATE TABLE %s (n int)", replication->marker));
	/* The publication first: the slot decodes from its creation on and must find the publication there. */
	NodeSessionQuery(replication->source_session, psprintf("CREATE PUBLICATION %s FOR TABLE %s", name, tables.data));
	NodeSessionQuery(replication->source_session,
	                 psprintf("SELECT pg_catalog.pg_create_logical_replication_slot(%s, 'pgoutput')",
	                          quote_literal_cstr(replication->name)));
	/* Its own slot made above: no slot made by the target, so this runs the same from any node to any other. */
	NodeSessionQuery(replication->target_session,
	                 psprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (create_slot = false, "
	                          "slot_name = %s, copy_data = true)",
	                          name, quote_literal_cstr(SourceConnInfo(replication->source)), name,
	                          quote_literal_cstr(replication->name)));
	ReadSubscriptionId(replication);
}

uint64
WaitForInitialCopy(MoveReplication *replication)
{
	const char *sql =
	    psprintf("SELECT pg_catalog.format('%%s %%s %%s %%s', pg_catalog.count(*) FILTER (WHERE r.srsubstate "
	             "OPERATOR(pg_catalog.=) 'r'), pg_catalog.count(r.srrelid), "
	             "(SELECT COALESCE(pg_catalog.sum(e.apply_error_count OPERATOR(pg_catalog.+) e.sync_error_count), 0) "
	             "FROM pg_catalog.pg_stat_subscription_stats e WHERE e.subid OPERATOR(pg_catalog.=) s.oid), "
	             "(SELECT COALESCE(pg_catalog.sum(p.tuples_processed), 0) FROM pg_catalog.pg_stat_progress_copy p "
	             "WHERE p.relid IN (SELECT x.srrelid FROM pg_catalog.pg_subscription_rel x WHERE x.srsubid "
	             "OPERATOR(pg_catalog.=) s.oid))) "
	             "FROM pg_catalog.pg_subscription s LEFT JOIN pg_catalog.pg_subscription_rel r ON r.srsubid "
	             "OPERATOR(pg_catalog.=) s.oid WHERE %s GROUP BY s.oid",
	             SubscriptionCondition(replication));
	int tables = list_length(replication->tables) + 1; /* and the marker table */
	uint64 shown = 0;
	for (;;)
	{
		char *status = NodeSessionQuery(replication->target_session, sql);
		int ready = 0;
		int known = 0;
		long errors = 0;
		unsigned long long copying = 0;
		if (status == NULL || sscanf(status, "%d %d %ld %llu", &ready, &known, &errors, &copying) != 4)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			                errmsg("the subscription of the online move disappeared from node %d",
			                       replication->target->nodeid)));
		if (errors > 0)
			ReplicationFailed(replication);
		if (ready == tables && known == tables)
			break;
		/* Rows of the tables being copied now (the tables done are counted at the end). */
		if (copying > shown)
			SetMovedRows(shown = copying);
		Sleep(kCopyPollMs);
	}

	StringInfoData count;
	initStringInfo(&count);
	ListCell *cell;
	foreach (cell, replication->tables)
		appendStringInfo(&count, "%s(SELECT pg_catalog.count(*) FROM %s)",
		                 count.len > 0 ? " OPERATOR(pg_catalog.+) " : "SELECT ", (const char *) lfirst(cell));
	uint64 rows = strtoull(NodeSessionQuery(replication->target_session, count.data), NULL, 10);
	SetMovedRows(rows);
	return rows;
}

long
WaitForCatchUp(MoveReplication *replication)
{
	TimestampTz start = GetCurrentTimestamp();
	/*
	 * A row in the marker table, committed (and flushed, so the walsender decodes it at once) after
	 * every change to wait for: once the target has it, the apply worker, which applies in commit
	 * order, has applied them all.
	 */
	replication->markers++;
	NodeSessionQuery(replication->source_session,
	                 psprintf("BEGIN; SET LOCAL synchronous_commit = on; INSERT INTO %s VALUES (%d); COMMIT",
	                          replication->marker, replication->markers));
	const char *sql = psprintf("SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) %d FROM %s", replication->markers,
	                           replication->marker);
	for (int poll = 1;; poll++)
	{
		char *done = NodeSessionQuery(replication->target_session, sql);
		if (done != NULL && strcmp(done, "t") == 0)
			break;
		if (poll % 500 == 0 && NodeSessionQuery(replication->target_session,
		                                        psprintf("SELECT 1 FROM pg_catalog.pg_stat_subscription_stats e WHERE "
		                                                 "e.subid OPERATOR(pg_catalog.=) %s AND e.apply_error_count "
		                                                 "OPERATOR(pg_catalog.>) 0",
		                                                 quote_literal_cstr(replication->subid))) != NULL)
			ReplicationFailed(replication);
		Sleep(kPollMs);
	}
	/* The subscription commits asynchronously: what the target applied must survive its crash once it serves. */
	FlushWal(replication->target_session);
	return TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
}

void
WaitForPreparedOnSource(MoveReplication *replication)
{
	char *since = NodeSessionQuery(
	    replication->source_session,
	    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts WHERE database OPERATOR(pg_catalog.=) "
	    "pg_catalog.current_database()) THEN pg_catalog.statement_timestamp()::pg_catalog.text END");
	if (since == NULL)
		return;
	const char *sql =
	    psprintf("SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_xacts WHERE database "
	             "OPERATOR(pg_catalog.=) pg_catalog.current_database() AND prepared OPERATOR(pg_catalog.<=) "
	             "%s::pg_catalog.timestamptz",
	             quote_literal_cstr(since));
	while (strcmp(NodeSessionQuery(replication->source_session, sql), "0") != 0)
		Sleep(kPollMs);
}

void
DropReplication(MoveReplication *replication, bool strict)
{
	const char *name = quote_identifier(replication->name);
	remote::NodeSession *source = replication->source_session;
	remote::NodeSession *target = replication->target_session;
	const char *drop_subscription = psprintf("DROP SUBSCRIPTION IF EXISTS %s", name);

	if (strict)
	{
		/* Drops the slot on the source too, waiting until the walsender lets go of it. */
		NodeSessionQuery(target, drop_subscription); /* alone: not in a transaction block */
		NodeSessionQuery(target, psprintf("DROP TABLE %s", replication->marker));
		NodeSessionQuery(source, psprintf("DROP PUBLICATION %s; DROP TABLE %s", name, replication->marker));
		return;
	}

	/* A failed move: the target may be down, the source too; each step on its own. */
	bool target_up = NodeSessionTry(target, "SELECT 1");
	if (target_up)
	{
		char *subid = NULL;
		if (replication->subid == NULL &&
		    NodeSessionTry(target,
		                   psprintf("SELECT s.oid::pg_catalog.text FROM pg_catalog.pg_subscription s WHERE %s",
		                            SubscriptionCondition(replication)),
		                   &subid) &&
		    subid != NULL)
			replication->subid = subid;
		/* Without reaching the source, the subscription goes without its slot (dropped below, or next time). */
		if (!NodeSessionTry(target, drop_subscription))
		{
			NodeSessionTry(target, psprintf("ALTER SUBSCRIPTION %s DISABLE", name));
			NodeSessionTry(target, psprintf("ALTER SUBSCRIPTION %s SET (slot_name = NONE)", name));
			NodeSessionTry(target, drop_subscription);
		}
		NodeSessionTry(target, psprintf("DROP TABLE IF EXISTS %s", replication->marker));
	}
	if (!NodeSessionTry(source,
	                    psprintf("DROP PUBLICATION IF EXISTS %s; DROP TABLE IF EXISTS %s", name, replication->marker)))
		return;
	/* Slots a walsender still holds: ended first (a subscription that can no longer stop it may be down). */
	const char *slots = SlotCondition(replication);
	for (int attempt = 0; attempt < 100; attempt++)
	{
		NodeSessionTry(source, psprintf("SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(active_pid)) FROM "
		                                "pg_catalog.pg_replication_slots WHERE active_pid IS NOT NULL AND %s",
		                                slots));
		NodeSessionTry(source, psprintf("SELECT pg_catalog.count(pg_catalog.pg_drop_replication_slot(slot_name)) FROM "
		                                "pg_catalog.pg_replication_slots WHERE NOT active AND %s",
		                                slots));
		char *left = NULL;
		if (!NodeSessionTry(source,
		                    psprintf("SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots WHERE %s", slots),
		                    &left) ||
		    left == NULL || strcmp(left, "0") == 0)
			break;
		pg_usleep(50 * 1000L);
	}
}

} // namespace fdwshard::operations
