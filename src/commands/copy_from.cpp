/*
 * COPY FROM into a distributed table (see commands/copy_from.h). PostgreSQL's COPY into the
 * partitioned table would insert each row of a foreign shard with its own round trip. Here
 * PostgreSQL's COPY code parses the input against the distributed table (every format and
 * option, defaults and sequences for missing columns, errors that name the line), a batch of
 * rows at a time, and executor/shard_copy.cpp sends them to their shards in large COPYs.
 */
#include "fdwshard/commands/copy_from.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/executor/shard_copy.h"

extern "C"
{
#include "catalog/pg_authid.h"
#include "commands/copy.h"
#include "commands/copyfrom_internal.h"
#include "utils/rls.h"
}

namespace fdwshard::commands
{

namespace
{

/* Rows parsed, under the session's settings, before they go to the shards. */
constexpr int kBatchRows = 1000;

/*
 * What the fast path cannot take keeps PostgreSQL's COPY: false. So does a table whose shards
 * are all local, which PostgreSQL's tuple routing fills faster than parsing every row twice.
 */
bool
FastPathApplies(const CopyStmt *stmt, Relation rel, const catalog::CachedTable *table)
{
	TupleDesc desc = RelationGetDescr(rel);
	bool any_remote = false;
	for (int i = 0; table != NULL && i < table->shard_count; i++)
		any_remote = any_remote || OidIsValid(table->shards[i].serverid);
	return any_remote && stmt->whereClause == NULL && table->is_distributed && !table->has_row_triggers &&
	       !table->has_stmt_triggers && !(desc->constr != NULL && desc->constr->has_generated_stored) &&
	       check_enable_rls(RelationGetRelid(rel), InvalidOid, true) != RLS_ENABLED;
}

/* DoCopy's checks, as PostgreSQL makes them before a COPY FROM. */
ParseState *
CheckCopyFrom(const CopyStmt *stmt, const char *query_string, Relation rel)
{
	if (stmt->filename != NULL)
	{
		if (stmt->is_program && !has_privs_of_role(GetUserId(), ROLE_PG_EXECUTE_SERVER_PROGRAM))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			                errmsg("must be superuser or have privileges of the pg_execute_server_program role to "
			                       "COPY to or from an external program"),
			                errhint("Anyone can COPY to stdout or from stdin. psql's \\copy command also works for "
			                        "anyone.")));
		if (!stmt->is_program && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			                errmsg("must be superuser or have privileges of the pg_read_server_files role to COPY "
			                       "from a file"),
			                errhint("Anyone can COPY to stdout or from stdin. psql's \\copy command also works for "
			                        "anyone.")));
	}
	ParseState *pstate = make_parsestate(NULL);
	pstate->p_sourcetext = query_string;
	ParseNamespaceItem *item = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	item->p_rte->requiredPerms = ACL_INSERT;
	ListCell *cell;
	foreach (cell, CopyGetAttnums(RelationGetDescr(rel), rel, stmt->attlist))
		item->p_rte->insertedCols =
		    bms_add_member(item->p_rte->insertedCols, lfirst_int(cell) - FirstLowInvalidHeapAttributeNumber);
	(void) ExecCheckRTPerms(pstate->p_rtable, true);
	if (XactReadOnly && !rel->rd_islocaltemp)
		PreventCommandIfReadOnly("COPY FROM");
	return pstate;
}

/* Reads every row and hands it to copy; returns how many. */
uint64
RunCopy(executor::ShardCopy *copy, Relation rel, const catalog::CachedTable *table, CopyFromState cstate)
{
	int natts = RelationGetDescr(rel)->natts;
	int dist = table->dist_attnum - 1;
	EState *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	MemoryContext batch_context =
	    AllocSetContextCreate(CurrentMemoryContext, "fdwshard COPY batch", ALLOCSET_DEFAULT_SIZES);
	Datum *values = (Datum *) palloc(sizeof(Datum) * natts * kBatchRows);
	bool *nulls = (bool *) palloc(sizeof(bool) * natts * kBatchRows);
	uint64 *lines = (uint64 *) palloc(sizeof(uint64) * kBatchRows);
	uint64 processed = 0;

	for (bool done = false; !done;)
	{
		/* A batch parsed under the session's settings, errors naming the line. */
		ErrorContextCallback callback = {error_context_stack, CopyFromErrorCallback, cstate};
		error_context_stack = &callback;
		MemoryContext old_context = MemoryContextSwitchTo(batch_context);
		int count = 0;
		while (count < kBatchRows)
		{
			CHECK_FOR_INTERRUPTS();
			Datum *row_values = values + (size_t) count * natts;
			bool *row_nulls = nulls + (size_t) count * natts;
			if (!NextCopyFrom(cstate, econtext, row_values, row_nulls))
			{
				done = true;
				break;
			}
			if (row_nulls[dist])
				executor::ReportNullDistributionValue(rel, table->dist_attnum);
			lines[count++] = cstate->cur_lineno;
		}
		MemoryContextSwitchTo(old_context);
		error_context_stack = callback.previous;

		executor::ShardCopyAdd(copy, count, values, nulls, lines);
		MemoryContextReset(batch_context);
		ResetExprContext(econtext);
		processed += count;
	}
	executor::EndShardCopy(copy);
	FreeExecutorState(estate);
	MemoryContextDelete(batch_context);
	return processed;
}

} // namespace

bool
CopyIntoDistributedTable(UtilityCall *call)
{
	CopyStmt *stmt = (CopyStmt *) call->pstmt->utilityStmt;
	if (!stmt->is_from || stmt->relation == NULL)
		return false;
	Oid relid = RangeVarGetRelid(stmt->relation, RowExclusiveLock, true);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return false;
	const catalog::CachedTable *table = catalog::LookupDistributedTable(relid);
	Relation rel = table_open(relid, NoLock);
	if (!FastPathApplies(stmt, rel, table))
	{
		table_close(rel, NoLock);
		return false;
	}

	ParseState *pstate = CheckCopyFrom(stmt, call->query_string, rel);
	CopyFromState cstate =
	    BeginCopyFrom(pstate, rel, NULL, stmt->filename, stmt->is_program, NULL, stmt->attlist, stmt->options);
	executor::ShardCopy *copy = executor::BeginShardCopy(rel, table, psprintf("COPY %s", RelationGetRelationName(rel)));
	uint64 processed = RunCopy(copy, rel, table, cstate);
	EndCopyFrom(cstate);
	table_close(rel, NoLock);
	if (call->qc != NULL)
		SetQueryCompletion(call->qc, CMDTAG_COPY, processed);
	return true;
}

} // namespace fdwshard::commands
