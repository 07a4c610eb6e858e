/*
 * VACUUM, ANALYZE and GRANT/REVOKE on distributed tables. TRUNCATE needs nothing: PostgreSQL
 * truncates foreign partitions through postgres_fdw in the same transaction.
 */
#include "fdwshard/commands/restore.h"
#include "fdwshard/commands/utility_hook.h"

#include "fdwshard/remote/autocommit.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::commands
{

namespace
{

/* How an option's value is read: as PostgreSQL 15's ExecVacuum reads it. */
enum class VacuumValue
{
	Boolean,
	IndexCleanup, /* auto, or a Boolean */
	Parallel,     /* an integer from 0 to MAX_PARALLEL_WORKER_LIMIT */
};

/* One option of VACUUM (and, with in_analyze, of ANALYZE): the only keywords sent to a worker. */
struct VacuumOptionSpec
{
	const char *name;    /* as the parser hands it over (lower case) */
	const char *keyword; /* as fdwshard sends it */
	VacuumValue value;
	bool in_analyze;
	bits32 flag; /* VACOPT_* set by a true value, 0 for options without one */
};

const VacuumOptionSpec kVacuumOptions[] = {
    {"verbose", "VERBOSE", VacuumValue::Boolean, true, VACOPT_VERBOSE},
    {"skip_locked", "SKIP_LOCKED", VacuumValue::Boolean, true, VACOPT_SKIP_LOCKED},
    {"analyze", "ANALYZE", VacuumValue::Boolean, false, VACOPT_ANALYZE},
    {"freeze", "FREEZE", VacuumValue::Boolean, false, VACOPT_FREEZE},
    {"full", "FULL", VacuumValue::Boolean, false, VACOPT_FULL},
    {"disable_page_skipping", "DISABLE_PAGE_SKIPPING", VacuumValue::Boolean, false, VACOPT_DISABLE_PAGE_SKIPPING},
    {"process_toast", "PROCESS_TOAST", VacuumValue::Boolean, false, VACOPT_PROCESS_TOAST},
    {"truncate", "TRUNCATE", VacuumValue::Boolean, false, 0},
    {"index_cleanup", "INDEX_CLEANUP", VacuumValue::IndexCleanup, false, 0},
    {"parallel", "PARALLEL", VacuumValue::Parallel, false, 0},
};

/* The options of a VACUUM or ANALYZE, validated, and the option list workers get. */
struct VacuumOptions
{
	bits32 flags;       /* VACOPT_* as ExecVacuum would set them */
	const char *remote; /* "(KEYWORD value, ...) " from kVacuumOptions and validated values, or "" */
};

/*
 * Reads the options as PostgreSQL 15 does (ExecVacuum and vacuum() in commands/vacuum.c), with the
 * same errors, before anything runs anywhere: no local VACUUM may be there to check them first
 * when every shard is remote. The worker's option list is built from kVacuumOptions and the
 * validated values only, never from what the user typed.
 */
VacuumOptions
ParseVacuumOptions(UtilityCall *call, VacuumStmt *stmt)
{
	const char *command = stmt->is_vacuumcmd ? "VACUUM" : "ANALYZE";
	ParseState *pstate = make_parsestate(NULL);
	VacuumOptions options = {(bits32) (stmt->is_vacuumcmd ? VACOPT_VACUUM | VACOPT_PROCESS_TOAST : VACOPT_ANALYZE), ""};
	int parallel_workers = 0;
	StringInfoData remote;
	ListCell *cell;

	pstate->p_sourcetext = call->query_string;
	initStringInfo(&remote);
	foreach (cell, stmt->options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		const VacuumOptionSpec *spec = NULL;

		for (const VacuumOptionSpec &candidate : kVacuumOptions)
			if (strcmp(option->defname, candidate.name) == 0 && (stmt->is_vacuumcmd || candidate.in_analyze))
				spec = &candidate;
		if (spec == NULL)
			ereport(ERROR,
			        (errcode(ERRCODE_SYNTAX_ERROR), errmsg("unrecognized %s option \"%s\"", command, option->defname),
			         parser_errposition(pstate, option->location)));

		const char *value = NULL;
		switch (spec->value)
		{
			case VacuumValue::Boolean:
			{
				bool on = defGetBoolean(option);
				options.flags = on ? (options.flags | spec->flag) : (options.flags & ~spec->flag);
				value = on ? "true" : "false";
				break;
			}
			case VacuumValue::IndexCleanup:
				if (option->arg == NULL || pg_strcasecmp(defGetString(option), "auto") == 0)
					value = "auto";
				else
					value = defGetBoolean(option) ? "true" : "false";
				break;
			case VacuumValue::Parallel:
				if (option->arg == NULL)
					ereport(ERROR,
					        (errcode(ERRCODE_SYNTAX_ERROR),
					         errmsg("parallel option requires a value between 0 and %d", MAX_PARALLEL_WORKER_LIMIT),
					         parser_errposition(pstate, option->location)));
				parallel_workers = defGetInt32(option);
				if (parallel_workers < 0 || parallel_workers > MAX_PARALLEL_WORKER_LIMIT)
					ereport(ERROR,
					        (errcode(ERRCODE_SYNTAX_ERROR),
					         errmsg("parallel workers for vacuum must be between 0 and %d", MAX_PARALLEL_WORKER_LIMIT),
					         parser_errposition(pstate, option->location)));
				value = psprintf("%d", parallel_workers);
				break;
		}
		appendStringInfo(&remote, "%s%s %s", remote.len > 0 ? ", " : "(", spec->keyword, value);
	}
	if (remote.len > 0)
	{
		appendStringInfoString(&remote, ") ");
		options.remote = remote.data;
	}

	if ((options.flags & VACOPT_FULL) && parallel_workers > 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("VACUUM FULL cannot be performed in parallel")));
	if (!(options.flags & VACOPT_ANALYZE))
		foreach (cell, stmt->rels)
			if (((VacuumRelation *) lfirst(cell))->va_cols != NIL)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				                errmsg("ANALYZE option must be specified when a column list is provided")));
	if (stmt->is_vacuumcmd)
		PreventInTransactionBlock(call->context == PROCESS_UTILITY_TOPLEVEL, command);
	if ((options.flags & VACOPT_FULL) && (options.flags & VACOPT_DISABLE_PAGE_SKIPPING))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("VACUUM option DISABLE_PAGE_SKIPPING cannot be used with FULL")));
	if ((options.flags & VACOPT_FULL) && !(options.flags & VACOPT_PROCESS_TOAST))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("PROCESS_TOAST required with VACUUM FULL")));
	return options;
}

/*
 * May the current user vacuum (or analyze) the table? PostgreSQL's own rule and WARNING
 * (vacuum_is_relation_owner: the table's or the database's owner, or a superuser). A table the
 * user may not maintain is skipped on every node: its workers would run the command as the user
 * of the user mapping, who may well be allowed.
 */
bool
MayMaintain(Oid relid, bits32 flags)
{
	HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		return false;
	bool allowed = vacuum_is_relation_owner(relid, (Form_pg_class) GETSTRUCT(tuple), flags);
	ReleaseSysCache(tuple);
	return allowed;
}

const char *
ColumnList(List *columns)
{
	StringInfoData text;
	ListCell *cell;

	if (columns == NIL)
		return "";
	initStringInfo(&text);
	foreach (cell, columns)
		appendStringInfo(&text, "%s%s", text.len > 0 ? ", " : " (", quote_identifier(strVal(lfirst(cell))));
	appendStringInfoChar(&text, ')');
	return text.data;
}

/* The privileges a table has in PostgreSQL 15: the only privilege keywords sent to a shard. */
const struct
{
	const char *name; /* as the parser hands it over */
	const char *keyword;
} kTablePrivileges[] = {{"select", "SELECT"},  {"insert", "INSERT"},     {"update", "UPDATE"},
                        {"delete", "DELETE"},  {"truncate", "TRUNCATE"}, {"references", "REFERENCES"},
                        {"trigger", "TRIGGER"}};

/* PostgreSQL's own GRANT has refused other names already; none reaches a shard, whatever happens. */
const char *
TablePrivilegeKeyword(const char *name)
{
	for (const auto &privilege : kTablePrivileges)
		if (strcmp(name, privilege.name) == 0)
			return privilege.keyword;
	ereport(ERROR, (errcode(ERRCODE_INVALID_GRANT_OPERATION), errmsg("invalid privilege type %s for table", name)));
}

/* A GRANT/REVOKE for any relation: head + quoted relation name + tail. */
struct GrantText
{
	char *head;
	char *tail;
};

/*
 * "GRANT <privileges> ON TABLE " and " TO <grantees> [WITH GRANT OPTION]" (or the REVOKE forms)
 * for the relations of a table: privileges from kTablePrivileges, roles resolved here.
 * GRANTED BY is left out: PostgreSQL accepts only the current user there, where it changes
 * nothing, and on a worker the current user is the user mapping's.
 */

GrantText
DeparseGrant(GrantStmt *stmt)
{
	StringInfoData head;
	StringInfoData tail;
	ListCell *cell;

	initStringInfo(&head);
	appendStringInfoString(&head, stmt->is_grant ? "GRANT " : "REVOKE ");
	if (!stmt->is_grant && stmt->grant_option)
		appendStringInfoString(&head, "GRANT OPTION FOR ");
	if (stmt->privileges == NIL)
		appendStringInfoString(&head, "ALL PRIVILEGES");
	foreach (cell, stmt->privileges)
	{
		AccessPriv *privilege = (AccessPriv *) lfirst(cell);
		if (cell != list_head(stmt->privileges))
			appendStringInfoString(&head, ", ");
		appendStringInfoString(&head, privilege->priv_name != NULL ? TablePrivilegeKeyword(privilege->priv_name)
		                                                           : "ALL PRIVILEGES");
		appendStringInfoString(&head, ColumnList(privilege->cols));
	}
	appendStringInfoString(&head, " ON TABLE ");

	initStringInfo(&tail);
	appendStringInfoString(&tail, stmt->is_grant ? " TO " : " FROM ");
	foreach (cell, stmt->grantees)
		appendStringInfo(&tail, "%s%s", cell != list_head(stmt->grantees) ? ", " : "",
		                 remote::QuotedRoleName((RoleSpec *) lfirst(cell)));
	if (stmt->is_grant && stmt->grant_option)
		appendStringInfoString(&tail, " WITH GRANT OPTION");
	if (!stmt->is_grant && stmt->behavior == DROP_CASCADE)
		appendStringInfoString(&tail, " CASCADE");
	return GrantText{head.data, tail.data};
}

} // namespace

bool
ProcessVacuum(UtilityCall *call, VacuumStmt *stmt)
{
	List *relation_tables = NIL; /* DistributedTable * or NULL, parallel to stmt->rels */
	bool any_distributed = false;
	ListCell *cell;

	foreach (cell, stmt->rels)
	{
		VacuumRelation *vrel = (VacuumRelation *) lfirst(cell);
		Oid relid = vrel->relation != NULL ? RangeVarGetRelid(vrel->relation, NoLock, true) : vrel->oid;
		DistributedTable *table = LoadDistributedTable(relid);

		relation_tables = lappend(relation_tables, table);
		any_distributed |= table != NULL;
	}
	if (!any_distributed)
		return false;

	VacuumOptions options = ParseVacuumOptions(call, stmt);
	List *tables = NIL; /* DistributedTable *, those the user may maintain */
	List *native_rels = NIL;
	List *columns = NIL; /* column list per distributed table, parallel to tables */
	ListCell *table_cell;
	forboth(cell, stmt->rels, table_cell, relation_tables)
	{
		VacuumRelation *vrel = (VacuumRelation *) lfirst(cell);
		DistributedTable *table = (DistributedTable *) lfirst(table_cell);

		if (table == NULL)
		{
			native_rels = lappend(native_rels, vrel);
			continue;
		}
		if (!MayMaintain(table->relid, options.flags))
			continue; /* warned; none of its shards is touched */
		tables = lappend(tables, table);
		columns = lappend(columns, vrel->va_cols);
		if (!stmt->is_vacuumcmd)
		{
			native_rels = lappend(native_rels, vrel); /* ANALYZE samples foreign partitions too */
			continue;
		}
		/* VACUUM: the local shards here, the remote ones on their workers (no warning for each). */
		ListCell *shard_cell;
		foreach (shard_cell, table->shards)
		{
			Shard *shard = (Shard *) lfirst(shard_cell);
			if (shard->is_local)
				native_rels = lappend(native_rels, makeVacuumRelation(makeRangeVar(table->schema, shard->name, -1),
				                                                      InvalidOid, vrel->va_cols));
		}
	}

	/* The native command for the rest (an empty list would mean every table of the database). */
	const char *command = stmt->is_vacuumcmd ? "VACUUM" : "ANALYZE";
	stmt = (VacuumStmt *) WritableStatement(call);
	stmt->rels = native_rels;
	if (native_rels != NIL)
		CallPreviousUtility(call);

	/* The shard tables on the workers: their own statistics (and VACUUM) where the rows are. */
	bool analyze = (options.flags & VACOPT_ANALYZE) != 0;
	ListCell *columns_cell;
	forboth(cell, tables, columns_cell, columns)
	{
		DistributedTable *table = (DistributedTable *) lfirst(cell);
		ListCell *shard_cell;

		foreach (shard_cell, RemoteShards(table))
		{
			Shard *shard = (Shard *) lfirst(shard_cell);
			char *sql = psprintf("%s %s%s%s", command, options.remote, ShardRelName(table, shard),
			                     ColumnList((List *) lfirst(columns_cell)));
			if (stmt->is_vacuumcmd) /* not allowed in the remote transaction: runs as its own */
				PQclear(remote::ExecuteAutocommit(shard->serverid, sql, 0, NULL, NULL));
			else
				RunOnShardNode(shard, sql);
		}
		/* The coordinator's statistics of the whole table and of its foreign partitions. */
		if (stmt->is_vacuumcmd && analyze)
			RunLocal(psprintf("ANALYZE %s%s", remote::QualifiedName(table->schema, table->name),
			                  ColumnList((List *) lfirst(columns_cell))));
	}
	return true;
}

bool
ProcessGrant(UtilityCall *call, GrantStmt *stmt)
{
	/*
	 * A dump restored has every shard relation's grants of its own, and the workers kept theirs:
	 * the table's grant is the coordinator's alone (pg_restore -j runs both at once).
	 */
	if (Restoring())
		return false;
	if (stmt->objtype != OBJECT_TABLE ||
	    (stmt->targtype != ACL_TARGET_OBJECT && stmt->targtype != ACL_TARGET_ALL_IN_SCHEMA))
		return false;

	List *tables = NIL;
	ListCell *cell;
	foreach (cell, stmt->objects)
	{
		if (stmt->targtype == ACL_TARGET_OBJECT)
		{
			DistributedTable *table = LoadDistributedTable(RangeVarGetRelid((RangeVar *) lfirst(cell), NoLock, true));
			if (table != NULL)
				tables = lappend(tables, table);
			continue;
		}
		/* ALL TABLES IN SCHEMA: PostgreSQL grants on the coordinator's relations, we on the workers' shards. */
		ListCell *relid_cell;
		foreach (relid_cell,
		         LocalTexts("SELECT d.logicalrelid::oid::text FROM fdwshard.distributed_table d "
		                    "JOIN pg_catalog.pg_class c ON c.oid = d.logicalrelid WHERE c.relnamespace = $1 ORDER BY 1",
		                    get_namespace_oid(strVal(lfirst(cell)), false)))
		{
			DistributedTable *table = LoadDistributedTable(atooid((char *) lfirst(relid_cell)));
			if (table != NULL)
				tables = lappend(tables, table);
		}
	}
	if (tables == NIL)
		return false;

	/*
	 * Only the owner (or a member of its role, or a superuser): on a worker the statement runs as
	 * the user of the user mapping, so a grant option held on the coordinator, or its absence,
	 * would not be what PostgreSQL checks there.
	 */
	foreach (cell, tables)
	{
		DistributedTable *table = (DistributedTable *) lfirst(cell);
		if (!pg_class_ownercheck(table->relid, GetUserId()))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			                errmsg("permission denied to %s privileges on distributed table \"%s\"",
			                       stmt->is_grant ? "grant" : "revoke", table->name),
			                errdetail("Only the owner of a distributed table can change its privileges."),
			                errhint("Ask the owner of the table, or a member of its role, to run the statement.")));
	}

	CallPreviousUtility(call);
	GrantText text = DeparseGrant(stmt);
	foreach (cell, tables)
	{
		DistributedTable *table = (DistributedTable *) lfirst(cell);
		ListCell *shard_cell;
		foreach (shard_cell, table->shards)
		{
			Shard *shard = (Shard *) lfirst(shard_cell);
			char *sql = psprintf("%s%s%s", text.head, ShardRelName(table, shard), text.tail);

			RunLocal(sql); /* the local table or the foreign table */
			if (!shard->is_local)
				RunOnShardNode(shard, sql);
		}
	}
	return true;
}

} // namespace fdwshard::commands
