/*
 * ALTER TABLE, RENAME and SET SCHEMA on distributed tables. PostgreSQL applies the statement to the
 * partitioned table and, by its own recursion, to local and foreign partitions; fdwshard then sends
 * the same change to the shard tables on the workers, in the same transaction, and refuses the
 * subcommands it cannot propagate.
 */
#include "fdwshard/commands/restore.h"
#include "fdwshard/commands/utility_hook.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/commands/shard_keys.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::commands
{

namespace
{

/* One subcommand and what the shards need for it. */
struct SubcommandPlan
{
	AlterTableCmd *cmd;
	bool native;         /* PostgreSQL runs it on the partitioned table */
	bool column_existed; /* ADD COLUMN IF NOT EXISTS of an existing column */
	char *using_expr;    /* ALTER COLUMN TYPE ... USING, deparsed against the table before the change */
};

const char *
SubcommandName(AlterTableType type)
{
	switch (type)
	{
		case AT_AttachPartition:
			return "ALTER TABLE ... ATTACH PARTITION";
		case AT_DetachPartition:
		case AT_DetachPartitionFinalize:
			return "ALTER TABLE ... DETACH PARTITION";
		case AT_SetRelOptions:
		case AT_ResetRelOptions:
			return "ALTER TABLE ... SET/RESET (storage parameters)";
		case AT_SetStatistics:
			return "ALTER TABLE ... SET STATISTICS";
		case AT_SetStorage:
			return "ALTER TABLE ... SET STORAGE";
		case AT_SetCompression:
			return "ALTER TABLE ... SET COMPRESSION";
		case AT_AddIdentity:
		case AT_SetIdentity:
		case AT_DropIdentity:
			return "ALTER TABLE ... IDENTITY";
		case AT_EnableRowSecurity:
		case AT_DisableRowSecurity:
		case AT_ForceRowSecurity:
		case AT_NoForceRowSecurity:
			return "ALTER TABLE ... ROW LEVEL SECURITY";
		case AT_EnableTrig:
		case AT_DisableTrig:
		case AT_EnableAlwaysTrig:
		case AT_EnableReplicaTrig:
		case AT_EnableTrigAll:
		case AT_DisableTrigAll:
		case AT_EnableTrigUser:
		case AT_DisableTrigUser:
			return "ALTER TABLE ... ENABLE/DISABLE TRIGGER";
		case AT_SetTableSpace:
			return "ALTER TABLE ... SET TABLESPACE";
		case AT_SetLogged:
		case AT_SetUnLogged:
			return "ALTER TABLE ... SET LOGGED/UNLOGGED";
		case AT_ReplicaIdentity:
			return "ALTER TABLE ... REPLICA IDENTITY";
		case AT_ClusterOn:
		case AT_DropCluster:
			return "ALTER TABLE ... CLUSTER";
		case AT_AddInherit:
		case AT_DropInherit:
			return "ALTER TABLE ... INHERIT";
		case AT_AddOf:
		case AT_DropOf:
			return "ALTER TABLE ... OF";
		case AT_DropExpression:
			return "ALTER TABLE ... DROP EXPRESSION";
		case AT_AlterConstraint:
			return "ALTER TABLE ... ALTER CONSTRAINT";
		default:
			return "this ALTER TABLE subcommand";
	}
}

/* Names of the CHECK constraints of the table (not the shard keys' placeholders): compared before and after to find
 * what to send. */
List *
CheckConstraints(Oid relid)
{
	return CheckConstraintNames(relid, false);
}

bool
ListHasName(List *names, const char *name)
{
	ListCell *cell;
	foreach (cell, names)
		if (strcmp((const char *) lfirst(cell), name) == 0)
			return true;
	return false;
}

/* pg_get_constraintdef of the table's constraint name, every name schema-qualified. */
char *
ConstraintDefinition(Oid relid, const char *name)
{
	MemoryContext caller = CurrentMemoryContext;
	char *definition = NULL;
	int nest_level = remote::BeginQualifiedDeparse();

	SPI_connect();
	if (catalog::SpiRun("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1 AND conname = $2",
	                    {catalog::OidArg(relid), catalog::TextArg(name)}) > 0)
		definition = MemoryContextStrdup(caller, catalog::SpiText(0, 1));
	SPI_finish();
	remote::EndQualifiedDeparse(nest_level);
	if (definition == NULL)
		elog(ERROR, "fdwshard: constraint \"%s\" not found", name);
	return definition;
}

/* Sends "ALTER TABLE <shard> <action>" to every remote shard. */
void
AlterRemoteShards(const DistributedTable *table, const char *action)
{
	ListCell *cell;
	foreach (cell, RemoteShards(table))
	{
		Shard *shard = (Shard *) lfirst(cell);
		RunOnShardNode(shard, psprintf("ALTER TABLE %s %s", ShardRelName(table, shard), action));
	}
}

void
CheckAddColumn(DistributedTable *table, ColumnDef *column)
{
	ListCell *cell;
	foreach (cell, column->constraints)
	{
		Constraint *constraint = (Constraint *) lfirst(cell);

		switch (constraint->contype)
		{
			case CONSTR_NULL:
			case CONSTR_NOTNULL:
			case CONSTR_DEFAULT:
			case CONSTR_CHECK:
			case CONSTR_GENERATED:
				break;
			default:
				ereport(ERROR,
				        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				         errmsg("cannot add column \"%s\" with this constraint to distributed table \"%s\"",
				                column->colname, table->name),
				         errhint("Add the column first, then the constraint with ALTER TABLE ... ADD CONSTRAINT; "
				                 "identity columns cannot be added to a distributed table.")));
		}
	}
}

/* ALTER COLUMN TYPE ... USING: the expression, deparsed against the table as it is before the change. */
char *
DeparseUsing(DistributedTable *table, Node *raw_expr)
{
	Relation rel = relation_open(table->relid, NoLock);
	ParseState *pstate = make_parsestate(NULL);
	ParseNamespaceItem *item = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, true);
	addNSItemToQuery(pstate, item, false, true, true);
	Node *expr = transformExpr(pstate, (Node *) copyObject(raw_expr), EXPR_KIND_ALTER_COL_TRANSFORM);
	relation_close(rel, NoLock);

	int nest_level = remote::BeginQualifiedDeparse();
	char *text = deparse_expression(expr, deparse_context_for(table->name, table->relid), false, false);
	remote::EndQualifiedDeparse(nest_level);
	return text;
}

/* The column as it now is on the partitioned table: type, collation, generated expression or default. */
void
AddColumnToRemoteShards(DistributedTable *table, const SubcommandPlan *plan)
{
	ColumnDef *def = (ColumnDef *) plan->cmd->def;
	if (plan->column_existed)
		return;

	Relation rel = relation_open(table->relid, NoLock);
	AttrNumber attnum = get_attnum(table->relid, def->colname);
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	StringInfoData sql;
	char *default_text = NULL;
	int nest_level = remote::BeginQualifiedDeparse();

	initStringInfo(&sql);
	appendStringInfo(
	    &sql, "ADD COLUMN %s %s", quote_identifier(def->colname),
	    format_type_extended(att->atttypid, att->atttypmod, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
	if (OidIsValid(att->attcollation) && att->attcollation != get_typcollation(att->atttypid))
		appendStringInfo(&sql, " COLLATE %s", generate_collation_name(att->attcollation));
	if (att->atthasdef)
	{
		Node *expr = build_column_default(rel, attnum);
		if (expr != NULL)
		{
			if (contain_volatile_functions(expr))
				ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				                errmsg("cannot add column \"%s\" with a volatile default to distributed table \"%s\"",
				                       def->colname, table->name),
				                errhint("Add the column without a default, fill it with UPDATE, then ALTER COLUMN ... "
				                        "SET DEFAULT.")));
			default_text = deparse_expression(expr, deparse_context_for(table->name, table->relid), false, false);
			if (att->attgenerated == ATTRIBUTE_GENERATED_STORED)
				appendStringInfo(&sql, " GENERATED ALWAYS AS (%s) STORED", default_text);
			else
				appendStringInfo(&sql, " DEFAULT %s", default_text);
		}
	}
	if (att->attnotnull)
		appendStringInfoString(&sql, " NOT NULL");
	remote::EndQualifiedDeparse(nest_level);
	bool drop_default = default_text != NULL && att->attgenerated != ATTRIBUTE_GENERATED_STORED;
	relation_close(rel, NoLock);

	AlterRemoteShards(table, sql.data);
	/* Defaults are evaluated on the coordinator; the shard only needed it to fill existing rows. */
	if (drop_default)
		AlterRemoteShards(table, psprintf("ALTER COLUMN %s DROP DEFAULT", quote_identifier(def->colname)));
}

void
AlterColumnTypeOnRemoteShards(DistributedTable *table, const SubcommandPlan *plan)
{
	AttrNumber attnum = get_attnum(table->relid, plan->cmd->name);
	Oid type;
	int32 typmod;
	Oid collation;
	get_atttypetypmodcoll(table->relid, attnum, &type, &typmod, &collation);

	int nest_level = remote::BeginQualifiedDeparse();
	StringInfoData sql;
	initStringInfo(&sql);
	appendStringInfo(&sql, "ALTER COLUMN %s TYPE %s", quote_identifier(plan->cmd->name),
	                 format_type_extended(type, typmod, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
	if (OidIsValid(collation) && collation != get_typcollation(type))
		appendStringInfo(&sql, " COLLATE %s", generate_collation_name(collation));
	remote::EndQualifiedDeparse(nest_level);
	if (plan->using_expr != NULL)
		appendStringInfo(&sql, " USING %s", plan->using_expr);
	AlterRemoteShards(table, sql.data);
}

/* Every shard relation on the coordinator and every shard table on the workers gets the same owner. */
void
ChangeShardOwners(DistributedTable *table, RoleSpec *owner)
{
	const char *role = remote::QuotedRoleName(owner);
	ListCell *cell;

	foreach (cell, table->shards)
	{
		Shard *shard = (Shard *) lfirst(cell);
		const char *rel = ShardRelName(table, shard);

		RunLocal(psprintf("%s %s OWNER TO %s", AlterShardKeyword(shard), rel, role));
		if (!shard->is_local)
			RunOnShardNode(shard, psprintf("ALTER TABLE %s OWNER TO %s", rel, role));
	}
}

} // namespace

bool
ProcessAlterTable(UtilityCall *call, AlterTableStmt *stmt)
{
	if (stmt->objtype == OBJECT_INDEX)
	{
		if (ProcessAttachShardIndex(call, stmt))
			return true;
		Oid index = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (OidIsValid(index) && get_rel_relkind(index) == RELKIND_PARTITIONED_INDEX &&
		    LoadDistributedTable(IndexGetRelation(index, false)) != NULL)
			RefuseUnsupported("ALTER INDEX", get_rel_name(IndexGetRelation(index, false)));
		return false;
	}
	if (stmt->objtype != OBJECT_TABLE && stmt->objtype != OBJECT_FOREIGN_TABLE)
		return false;
	if (ProcessRestoredShardKey(call, stmt))
		return true;

	DistributedTable *table = DistributedTableOrRefuseShard(
	    stmt->relation, "alter", "Alter the distributed table: fdwshard changes every shard.");
	if (table == NULL)
		return false;
	Oid relid = table->relid;

	LockRelationOid(relid, AlterTableGetLockLevel(stmt->cmds));
	stmt = (AlterTableStmt *) WritableStatement(call);

	/* Preprocess: refuse what cannot reach the shards, note what the shards will need. */
	List *plans = NIL;
	List *native_cmds = NIL;
	ListCell *cell;
	foreach (cell, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(cell);
		SubcommandPlan *plan = (SubcommandPlan *) palloc0(sizeof(SubcommandPlan));
		plan->cmd = cmd;
		plan->native = true;

		switch (cmd->subtype)
		{
			case AT_AddColumn:
			{
				ColumnDef *def = (ColumnDef *) cmd->def;
				CheckAddColumn(table, def);
				plan->column_existed = get_attnum(relid, def->colname) != InvalidAttrNumber;
				break;
			}
			case AT_AlterColumnType:
				if (strcmp(cmd->name, table->column) == 0)
					ereport(ERROR,
					        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					         errmsg("cannot change the type of distribution column \"%s\" of distributed table \"%s\"",
					                cmd->name, table->name),
					         errhint("Rows are placed by the hash of this column: undistribute_table(), change the "
					                 "type, then distribute the table again.")));
				if (((ColumnDef *) cmd->def)->raw_default != NULL)
				{
					if (RemoteShards(table) != NIL)
						ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						                errmsg("cannot change the type of column \"%s\" of distributed table \"%s\" "
						                       "with USING",
						                       cmd->name, table->name),
						                errdetail("PostgreSQL does not accept USING on foreign partitions."),
						                errhint("Add a column of the new type, fill it with UPDATE, drop the old "
						                        "column and rename the new one.")));
					plan->using_expr = DeparseUsing(table, ((ColumnDef *) cmd->def)->raw_default);
				}
				break;
			case AT_DropColumn:
			case AT_ColumnDefault:
			case AT_DropNotNull:
			case AT_SetNotNull:
			case AT_ChangeOwner:
				break;
			case AT_AddConstraint:
			{
				Constraint *constraint = (Constraint *) cmd->def;
				switch (constraint->contype)
				{
					case CONSTR_CHECK:
						break;
					case CONSTR_PRIMARY:
					case CONSTR_UNIQUE:
					case CONSTR_FOREIGN:
						plan->native = false; /* one per shard, none on the partitioned table */
						break;
					default:
						RefuseUnsupported("this kind of constraint", table->name);
				}
				break;
			}
			case AT_DropConstraint:
			case AT_ValidateConstraint:
				if (ShardKeyKind(relid, cmd->name) != '\0')
					plan->native = false;
				break;
			default:
				RefuseUnsupported(SubcommandName(cmd->subtype), table->name);
		}
		plans = lappend(plans, plan);
		if (plan->native)
			native_cmds = lappend(native_cmds, cmd);
	}

	/*
	 * Shard keys do not go through PostgreSQL's ALTER TABLE, nor through its ownership check made
	 * under the lock (the owner may have changed while we waited): checked once if any is here.
	 */
	if (list_length(native_cmds) < list_length(plans))
		RequireTableOwner(table->relid);

	List *checks_before = CheckConstraints(relid);
	stmt->cmds = native_cmds;
	if (native_cmds != NIL)
		CallPreviousUtility(call);

	/* Postprocess: the same change on the shard tables of the workers (local shards: native recursion). */
	bool keys_may_vanish = false;
	foreach (cell, plans)
	{
		SubcommandPlan *plan = (SubcommandPlan *) lfirst(cell);
		AlterTableCmd *cmd = plan->cmd;

		switch (cmd->subtype)
		{
			case AT_AddColumn:
				AddColumnToRemoteShards(table, plan);
				break;
			case AT_DropColumn:
				AlterRemoteShards(table, psprintf("DROP COLUMN %s%s%s", cmd->missing_ok ? "IF EXISTS " : "",
				                                  quote_identifier(cmd->name),
				                                  cmd->behavior == DROP_CASCADE ? " CASCADE" : ""));
				keys_may_vanish = true;
				break;
			case AT_AlterColumnType:
				AlterColumnTypeOnRemoteShards(table, plan);
				break;
			case AT_ColumnDefault:
				break; /* defaults are evaluated on the coordinator */
			case AT_DropNotNull:
			case AT_SetNotNull:
				AlterRemoteShards(table, psprintf("ALTER COLUMN %s %s NOT NULL", quote_identifier(cmd->name),
				                                  cmd->subtype == AT_SetNotNull ? "SET" : "DROP"));
				break;
			case AT_AddConstraint:
			{
				Constraint *constraint = (Constraint *) cmd->def;
				if (constraint->contype == CONSTR_FOREIGN)
					AddShardForeignKey(table, constraint);
				else if (constraint->contype != CONSTR_CHECK)
					AddShardKeyConstraint(table, constraint);
				break; /* CHECK: below */
			}
			case AT_DropConstraint:
				if (!plan->native)
					DropShardKey(table, cmd->name, cmd->behavior);
				break; /* CHECK: below */
			case AT_ValidateConstraint:
			{
				ListCell *shard_cell;
				foreach (shard_cell, plan->native ? RemoteShards(table) : table->shards)
				{
					Shard *shard = (Shard *) lfirst(shard_cell);
					const char *name = plan->native ? cmd->name : remote::NameWithSuffix(cmd->name, shard->shardid);
					RunOnShardNode(shard, psprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", ShardRelName(table, shard),
					                               quote_identifier(name)));
				}
				break;
			}
			case AT_ChangeOwner:
				ChangeShardOwners(table, cmd->newowner);
				break;
			default:
				break;
		}
	}

	/* CHECK constraints added or dropped (also by ADD/DROP COLUMN): the same on the remote shards. */
	List *checks_after = CheckConstraints(relid);
	foreach (cell, checks_before)
		if (!ListHasName(checks_after, (const char *) lfirst(cell)))
			AlterRemoteShards(table, psprintf("DROP CONSTRAINT IF EXISTS %s", quote_identifier((char *) lfirst(cell))));
	foreach (cell, checks_after)
		if (!ListHasName(checks_before, (const char *) lfirst(cell)))
			AlterRemoteShards(table, psprintf("ADD CONSTRAINT %s %s", quote_identifier((char *) lfirst(cell)),
			                                  ConstraintDefinition(relid, (const char *) lfirst(cell))));
	if (keys_may_vanish)
		ForgetVanishedShardKeys(table);
	InvalidateDistributedTable(relid);
	return true;
}

bool
ProcessRename(UtilityCall *call, RenameStmt *stmt)
{
	switch (stmt->renameType)
	{
		case OBJECT_TABLE:
		case OBJECT_FOREIGN_TABLE:
		case OBJECT_COLUMN:
		case OBJECT_TABCONSTRAINT:
			break;
		case OBJECT_INDEX:
		{
			Oid index = RangeVarGetRelid(stmt->relation, NoLock, true);
			if (OidIsValid(index) && get_rel_relkind(index) == RELKIND_PARTITIONED_INDEX &&
			    LoadDistributedTable(IndexGetRelation(index, false)) != NULL)
				RefuseUnsupported("ALTER INDEX ... RENAME", get_rel_name(IndexGetRelation(index, false)));
			return false;
		}
		default:
			return false;
	}
	if (stmt->relation == NULL)
		return false;
	DistributedTable *table =
	    DistributedTableOrRefuseShard(stmt->relation, "rename", "Rename the distributed table: its shards follow.");
	if (table == NULL)
		return false;
	Oid relid = table->relid;
	LockRelationOid(relid, AccessExclusiveLock);

	ListCell *cell;
	switch (stmt->renameType)
	{
		case OBJECT_TABCONSTRAINT:
			if (ShardKeyKind(relid, stmt->subname) != '\0')
			{
				RequireTableOwner(table->relid);
				RenameShardKey(table, stmt->subname, stmt->newname);
				break;
			}
			CallPreviousUtility(call);
			AlterRemoteShards(table, psprintf("RENAME CONSTRAINT %s TO %s", quote_identifier(stmt->subname),
			                                  quote_identifier(stmt->newname)));
			break;
		case OBJECT_COLUMN:
			CallPreviousUtility(call);
			AlterRemoteShards(table, psprintf("RENAME COLUMN %s TO %s", quote_identifier(stmt->subname),
			                                  quote_identifier(stmt->newname)));
			if (strcmp(stmt->subname, table->column) == 0)
			{
				SPI_connect();
				catalog::CatalogWrite(
				    "UPDATE fdwshard.distributed_table SET distribution_column = $2 WHERE logicalrelid = $1",
				    {catalog::OidArg(relid), catalog::TextArg(stmt->newname)});
				SPI_finish();
			}
			break;
		default:
			/* The table: each shard becomes <new name>_<shardid>, on the coordinator and on its worker. */
			CallPreviousUtility(call);
			foreach (cell, table->shards)
			{
				Shard *shard = (Shard *) lfirst(cell);
				char *new_name = remote::NameWithSuffix(stmt->newname, shard->shardid);
				const char *rename = psprintf("RENAME TO %s", quote_identifier(new_name));

				RunLocal(psprintf("%s %s %s", AlterShardKeyword(shard), ShardRelName(table, shard), rename));
				if (!shard->is_local)
				{
					RunOnShardNode(shard, psprintf("ALTER TABLE %s %s", ShardRelName(table, shard), rename));
					RunLocal(psprintf("ALTER FOREIGN TABLE %s OPTIONS (SET table_name %s)",
					                  remote::QualifiedName(table->schema, new_name), quote_literal_cstr(new_name)));
				}
			}
			break;
	}
	InvalidateDistributedTable(relid);
	return true;
}

bool
ProcessAlterObjectSchema(UtilityCall *call, AlterObjectSchemaStmt *stmt)
{
	if ((stmt->objectType != OBJECT_TABLE && stmt->objectType != OBJECT_FOREIGN_TABLE) || stmt->relation == NULL)
		return false;
	DistributedTable *table = DistributedTableOrRefuseShard(
	    stmt->relation, "move", "Move the distributed table: its shards follow.", " to another schema");
	if (table == NULL)
		return false;
	Oid relid = table->relid;
	LockRelationOid(relid, AccessExclusiveLock);
	CallPreviousUtility(call);

	/* Shards move with the table: on the coordinator, on the workers, and in the foreign tables' options. */
	const char *schema = quote_identifier(stmt->newschema);
	List *schema_ready = NIL;
	ListCell *cell;
	foreach (cell, table->shards)
	{
		Shard *shard = (Shard *) lfirst(cell);
		const char *move = psprintf("SET SCHEMA %s", schema);

		RunLocal(psprintf("%s %s %s", AlterShardKeyword(shard), ShardRelName(table, shard), move));
		if (shard->is_local)
			continue;
		if (!list_member_oid(schema_ready, shard->serverid))
		{
			EnsureRemoteSchema(shard->serverid, stmt->newschema);
			schema_ready = lappend_oid(schema_ready, shard->serverid);
		}
		RunOnShardNode(shard, psprintf("ALTER TABLE %s %s", ShardRelName(table, shard), move));
		RunLocal(psprintf("ALTER FOREIGN TABLE %s OPTIONS (SET schema_name %s)",
		                  remote::QualifiedName(stmt->newschema, shard->name), quote_literal_cstr(stmt->newschema)));
	}
	InvalidateDistributedTable(relid);
	return true;
}

} // namespace fdwshard::commands
