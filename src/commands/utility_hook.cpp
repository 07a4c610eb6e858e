/*
 * The ProcessUtility hook: a dispatcher. A fast filter on the statement type, then a handler per
 * statement that decides whether a distributed table is involved and, if so, preprocesses, runs
 * the previous hook and postprocesses the shards. What fdwshard does not propagate is refused.
 */
#include "fdwshard/commands/utility_hook.h"

#include "fdwshard/commands/copy_from.h"
#include "fdwshard/commands/copy_to.h"
#include "fdwshard/commands/shard_ddl.h"
#include "fdwshard/commands/restore.h"
#include "fdwshard/commands/shard_keys.h"
#include "fdwshard/guard.h"
#include "fdwshard/transaction/remote_isolation.h"

namespace fdwshard::commands
{

namespace
{

/* Set once by InitUtilityHook; the hook we chain to. */
ProcessUtility_hook_type previous_utility_hook = nullptr;

/* The previous hook as is: statements fdwshard does not handle (their nested statements still reach the hook). */
void
CallPrevious(UtilityCall *call)
{
	if (previous_utility_hook != nullptr)
		previous_utility_hook(call->pstmt, call->query_string, call->read_only_tree, call->context, call->params,
		                      call->query_env, call->dest, call->qc);
	else
		standard_ProcessUtility(call->pstmt, call->query_string, call->read_only_tree, call->context, call->params,
		                        call->query_env, call->dest, call->qc);
}

/* The distributed table a relation belongs to (itself or the table of its shard), or InvalidOid. */
Oid
DistributedOwner(RangeVar *relation, bool *is_shard)
{
	Oid relid = RangeVarGetRelid(relation, NoLock, true);

	*is_shard = false;
	if (!OidIsValid(relid))
		return InvalidOid;
	if (LoadDistributedTable(relid) != NULL)
		return relid;
	Oid owner = ShardOwner(relid);
	*is_shard = OidIsValid(owner);
	return owner;
}

/* Statements that would change a distributed table on the coordinator alone. */
void
RefuseLocalOnly(Node *parsetree)
{
	RangeVar *relation = NULL;
	const char *what = NULL;

	switch (nodeTag(parsetree))
	{
		case T_CreateTrigStmt:
			relation = ((CreateTrigStmt *) parsetree)->relation;
			what = "CREATE TRIGGER";
			break;
		case T_CreatePolicyStmt:
			relation = ((CreatePolicyStmt *) parsetree)->table;
			what = "CREATE POLICY";
			break;
		case T_RuleStmt:
			relation = ((RuleStmt *) parsetree)->relation;
			what = "CREATE RULE";
			break;
		case T_ClusterStmt:
			relation = ((ClusterStmt *) parsetree)->relation;
			what = "CLUSTER";
			break;
		case T_ReindexStmt:
			relation = ((ReindexStmt *) parsetree)->relation;
			what = "REINDEX";
			break;
		case T_CreateStmt:
		{
			CreateStmt *create = (CreateStmt *) parsetree;
			ListCell *cell;
			foreach (cell, create->inhRelations)
			{
				bool is_shard;
				if (OidIsValid(DistributedOwner((RangeVar *) lfirst(cell), &is_shard)))
					RefuseUnsupported(create->partbound ? "CREATE TABLE ... PARTITION OF" : "CREATE TABLE ... INHERITS",
					                  ((RangeVar *) lfirst(cell))->relname);
			}
			return;
		}
		default:
			return;
	}
	bool is_shard;
	if (relation != NULL && OidIsValid(DistributedOwner(relation, &is_shard)))
		RefuseUnsupported(what, relation->relname);
}

/* True when create copies a distributed table (LIKE), into a table that does not exist yet. */
bool
CopiesDistributedTable(CreateStmt *create)
{
	ListCell *cell;
	foreach (cell, create->tableElts)
	{
		Node *element = (Node *) lfirst(cell);
		if (IsA(element, TableLikeClause) &&
		    LoadDistributedTable(RangeVarGetRelid(((TableLikeClause *) element)->relation, NoLock, true)) != NULL)
			return !OidIsValid(RangeVarGetRelid(create->relation, NoLock, true));
	}
	return false;
}

/*
 * CREATE TABLE (LIKE <distributed table> INCLUDING CONSTRAINTS) copied the shard keys'
 * placeholders (CHECK constraints) but, as the table has no index, not the keys: the copy gets
 * neither.
 */
void
DropCopiedPlaceholders(CreateStmt *create)
{
	Oid relid = RangeVarGetRelid(create->relation, NoLock, false);
	ListCell *cell;
	foreach (cell, CheckConstraintNames(relid, true))
		RunLocal(psprintf("ALTER TABLE %s DROP CONSTRAINT %s",
		                  quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)),
		                  quote_identifier((const char *) lfirst(cell))));
}

void
DispatchUtility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree, ProcessUtilityContext context,
                ParamListInfo params, QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	UtilityCall call{pstmt, query_string, read_only_tree, context, params, query_env, dest, qc};
	Node *parsetree = pstmt->utilityStmt;
	bool handled = false;

	/* Fast filter: only statements that can touch a table, only once fdwshard's catalog exists. */
	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
		case T_RenameStmt:
		case T_AlterObjectSchemaStmt:
		case T_IndexStmt:
		case T_DropStmt:
		case T_GrantStmt:
		case T_CreateTrigStmt:
		case T_CreatePolicyStmt:
		case T_RuleStmt:
		case T_ClusterStmt:
		case T_ReindexStmt:
		case T_CreateStmt:
			break;
		case T_VacuumStmt:
			if (CatalogReady() && !PropagationBypassed())
				transaction::SettleForUtility(parsetree);
			break;
		case T_CopyStmt:
			if (CatalogReady() && !PropagationBypassed() && ProcessRestoredCatalogCopy(&call, (CopyStmt *) parsetree))
				return;
			if (CatalogReady() && !PropagationBypassed() &&
			    (CopyIntoDistributedTable(&call) || CopyFromDistributedTable(&call)))
				return;
			/* fall through */
		case T_TruncateStmt:
			if (CatalogReady())
				transaction::SettleForUtility(parsetree);
			CallPrevious(&call);
			return;
		default:
			CallPrevious(&call);
			return;
	}
	if (PropagationBypassed() || !CatalogReady())
	{
		CallPrevious(&call);
		return;
	}

	switch (nodeTag(parsetree))
	{
		case T_AlterTableStmt:
			handled = ProcessAlterTable(&call, (AlterTableStmt *) parsetree);
			break;
		case T_RenameStmt:
			handled = ProcessRename(&call, (RenameStmt *) parsetree);
			break;
		case T_AlterObjectSchemaStmt:
			handled = ProcessAlterObjectSchema(&call, (AlterObjectSchemaStmt *) parsetree);
			break;
		case T_IndexStmt:
			handled = ProcessIndex(&call, (IndexStmt *) parsetree);
			break;
		case T_DropStmt:
			handled = ProcessDrop(&call, (DropStmt *) parsetree);
			break;
		case T_VacuumStmt:
			handled = ProcessVacuum(&call, (VacuumStmt *) parsetree);
			break;
		case T_GrantStmt:
			handled = ProcessGrant(&call, (GrantStmt *) parsetree);
			break;
		case T_CreateTrigStmt:
			handled = ProcessRestoredTrigger(&call, (CreateTrigStmt *) parsetree);
			if (!handled)
				RefuseLocalOnly(parsetree);
			break;
		case T_CreateStmt:
		{
			RefuseLocalOnly(parsetree);
			bool copies_distributed = CopiesDistributedTable((CreateStmt *) parsetree);
			CallPrevious(&call);
			if (copies_distributed)
				DropCopiedPlaceholders((CreateStmt *) parsetree);
			return;
		}
		default:
			RefuseLocalOnly(parsetree);
			break;
	}
	if (!handled)
		CallPrevious(&call);
}

} // namespace

Node *
WritableStatement(UtilityCall *call)
{
	if (call->read_only_tree)
	{
		call->pstmt = (PlannedStmt *) copyObject(call->pstmt);
		call->read_only_tree = false;
	}
	return call->pstmt->utilityStmt;
}

void
CallPreviousUtility(UtilityCall *call)
{
	WithoutPropagation([&]() { CallPrevious(call); });
}

void
RefuseUnsupported(const char *what, const char *table_name)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
	                errmsg("%s is not supported on distributed table \"%s\"", what, table_name),
	                errhint("fdwshard would apply it on the coordinator only; undistribute_table() the table, "
	                        "change it and distribute it again.")));
}

void
InitUtilityHook(void)
{
	previous_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = [](PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
	                         ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
	                         DestReceiver *dest, QueryCompletion *qc) {
		pg::Entry([&]()
		          { DispatchUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc); });
	};
}

} // namespace fdwshard::commands
