/*
 * VACUUM, ANALYZE and GRANT/REVOKE on distributed tables. TRUNCATE needs nothing: PostgreSQL
 * truncates foreign partitions through postgres_fdw in the same transaction.
 */
#include "fdwshard/commands/utility_hook.h"

#include "fdwshard/remote/autocommit.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::commands
{

namespace
{

const char *
VacuumOptions(List *options)
{
	StringInfoData text;
	ListCell *cell;

	if (options == NIL)
		return "";
	initStringInfo(&text);
	foreach (cell, options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		appendStringInfo(&text, "%s%s", text.len > 0 ? ", " : "(", option->defname);
		if (option->arg != NULL)
			appendStringInfo(&text, " %s", quote_literal_cstr(defGetString(option)));
	}
	appendStringInfoString(&text, ") ");
	return text.data;
}

bool
HasOption(List *options, const char *name)
{
	ListCell *cell;
	foreach (cell, options)
		if (strcmp(((DefElem *) lfirst(cell))->defname, name) == 0)
			return defGetBoolean((DefElem *) lfirst(cell));
	return false;
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

const char *
RoleName(RoleSpec *role)
{
	switch (role->roletype)
	{
		case ROLESPEC_CSTRING:
			return quote_identifier(role->rolename);
		case ROLESPEC_CURRENT_ROLE:
			return "CURRENT_ROLE";
		case ROLESPEC_CURRENT_USER:
			return "CURRENT_USER";
		case ROLESPEC_SESSION_USER:
			return "SESSION_USER";
		default:
			return "PUBLIC";
	}
}

/* The GRANT/REVOKE statement for one relation. */
char *
DeparseGrant(GrantStmt *stmt, const char *relation)
{
	StringInfoData sql;
	ListCell *cell;

	initStringInfo(&sql);
	appendStringInfoString(&sql, stmt->is_grant ? "GRANT " : "REVOKE ");
	if (!stmt->is_grant && stmt->grant_option)
		appendStringInfoString(&sql, "GRANT OPTION FOR ");
	if (stmt->privileges == NIL)
		appendStringInfoString(&sql, "ALL PRIVILEGES");
	foreach (cell, stmt->privileges)
	{
		AccessPriv *privilege = (AccessPriv *) lfirst(cell);
		if (cell != list_head(stmt->privileges))
			appendStringInfoString(&sql, ", ");
		appendStringInfoString(&sql, privilege->priv_name != NULL ? privilege->priv_name : "ALL PRIVILEGES");
		appendStringInfoString(&sql, ColumnList(privilege->cols));
	}
	appendStringInfo(&sql, " ON TABLE %s %s ", relation, stmt->is_grant ? "TO" : "FROM");
	foreach (cell, stmt->grantees)
		appendStringInfo(&sql, "%s%s", cell != list_head(stmt->grantees) ? ", " : "",
		                 RoleName((RoleSpec *) lfirst(cell)));
	if (stmt->is_grant && stmt->grant_option)
		appendStringInfoString(&sql, " WITH GRANT OPTION");
	if (stmt->grantor != NULL)
		appendStringInfo(&sql, " GRANTED BY %s", RoleName(stmt->grantor));
	if (!stmt->is_grant && stmt->behavior == DROP_CASCADE)
		appendStringInfoString(&sql, " CASCADE");
	return sql.data;
}

} // namespace

bool
ProcessVacuum(UtilityCall *call, VacuumStmt *stmt)
{
	List *tables = NIL; /* DistributedTable * */
	List *native_rels = NIL;
	List *columns = NIL; /* column list per distributed table, parallel to tables */
	ListCell *cell;

	foreach (cell, stmt->rels)
	{
		VacuumRelation *vrel = (VacuumRelation *) lfirst(cell);
		Oid relid = vrel->relation != NULL ? RangeVarGetRelid(vrel->relation, NoLock, true) : vrel->oid;
		DistributedTable *table = LoadDistributedTable(relid);

		if (table == NULL)
		{
			native_rels = lappend(native_rels, vrel);
			continue;
		}
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
	if (tables == NIL)
		return false;

	const char *command = stmt->is_vacuumcmd ? "VACUUM" : "ANALYZE";
	if (stmt->is_vacuumcmd)
		PreventInTransactionBlock(call->context == PROCESS_UTILITY_TOPLEVEL, command);
	stmt = (VacuumStmt *) WritableStatement(call);
	stmt->rels = native_rels;
	if (native_rels != NIL)
		CallPreviousUtility(call);

	/* The shard tables on the workers: their own statistics (and VACUUM) where the rows are. */
	const char *options = VacuumOptions(stmt->options);
	bool analyze = !stmt->is_vacuumcmd || HasOption(stmt->options, "analyze");
	ListCell *columns_cell;
	forboth(cell, tables, columns_cell, columns)
	{
		DistributedTable *table = (DistributedTable *) lfirst(cell);
		ListCell *shard_cell;

		foreach (shard_cell, RemoteShards(table))
		{
			Shard *shard = (Shard *) lfirst(shard_cell);
			char *sql = psprintf("%s %s%s%s", command, options, ShardRelName(table, shard),
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
	if (stmt->targtype != ACL_TARGET_OBJECT || stmt->objtype != OBJECT_TABLE)
		return false;

	List *tables = NIL;
	ListCell *cell;
	foreach (cell, stmt->objects)
	{
		DistributedTable *table = LoadDistributedTable(RangeVarGetRelid((RangeVar *) lfirst(cell), NoLock, true));
		if (table != NULL)
			tables = lappend(tables, table);
	}
	if (tables == NIL)
		return false;

	CallPreviousUtility(call);
	foreach (cell, tables)
	{
		DistributedTable *table = (DistributedTable *) lfirst(cell);
		ListCell *shard_cell;
		foreach (shard_cell, table->shards)
		{
			Shard *shard = (Shard *) lfirst(shard_cell);
			char *sql = DeparseGrant(stmt, ShardRelName(table, shard));

			RunLocal(sql); /* the local table or the foreign table */
			if (!shard->is_local)
				RunOnShardNode(shard, sql);
		}
	}
	return true;
}

} // namespace fdwshard::commands
