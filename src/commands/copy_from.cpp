/*
 * COPY FROM into a distributed table (see commands/copy_from.h). PostgreSQL's COPY into the
 * partitioned table would insert each row of a foreign shard with its own round trip. Here
 * PostgreSQL's COPY code parses the input against the distributed table (every format and
 * option, defaults and sequences for missing columns, errors that name the line), the rows are
 * hashed to their shards and written, as COPY text, into a buffer per shard; a full buffer is one
 * COPY on its worker (sent, then left to run while the next rows are parsed) or, for a local
 * shard, one COPY into that table in this process. Values are printed under postgres_fdw's
 * transmission settings (ISO dates, UTC, full float precision) a batch of rows at a time, since
 * they are parsed under the session's.
 */
#include "fdwshard/commands/copy_from.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"
#include "fdwshard/remote/node_wait.h"

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

/* Rows parsed before they are printed (under the transmission settings) into the shards' buffers. */
constexpr int kBatchRows = 1000;
/* A shard's buffer goes to its shard once it holds this much. */
constexpr int kFlushBytes = 512 * 1024;

/* A worker's connection and the COPY it may still be running. */
struct WorkerStream
{
	Oid serverid;
	PGconn *conn;
	const char *running_sql; /* the COPY sent and not yet finished, or NULL */
	uint64 *running_lines;   /* the input line of each row it sends */
	int running_line_count;
};

/* C-style: in the statement's memory context. */
struct CopyRun
{
	const catalog::CachedTable *table;
	Relation rel;
	int natts;
	FmgrInfo *out_functions; /* per attribute; unused for dropped ones */
	char *columns;           /* the quoted column list every shard's COPY names */
	List *column_names;      /* the same as a list of String, for local shards */
	StringInfoData *buffers; /* per shard index */
	uint64 **lines;          /* per shard index: the input line of each row in its buffer */
	int *line_counts;
	int *line_capacity;
	WorkerStream *workers;
	int worker_count;
};

/* The buffer being read by a local shard's COPY (PostgreSQL's data source callback takes no argument). */
StringInfo local_source = NULL;
int local_offset = 0;

int
ReadLocalSource(void *outbuf, int, int maxread)
{
	int count = Min(maxread, local_source->len - local_offset);
	memcpy(outbuf, local_source->data + local_offset, count);
	local_offset += count;
	return count;
}

/* The shard table as its worker names it (the foreign table's options, else its own name). */
const char *
RemoteTableName(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	const char *schema = get_namespace_name(get_rel_namespace(relid));
	const char *name = get_rel_name(relid);
	ListCell *cell;
	foreach (cell, table->options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		if (strcmp(option->defname, "schema_name") == 0)
			schema = defGetString(option);
		else if (strcmp(option->defname, "table_name") == 0)
			name = defGetString(option);
	}
	return remote::QualifiedName(schema, name);
}

/* Appends value to buf in COPY text format: backslash, tab, newline and carriage return escaped. */
void
AppendCopyText(StringInfo buf, const char *value)
{
	const char *start = value;
	const char *p;
	for (p = value; *p != '\0'; p++)
	{
		char escaped = *p == '\\' ? '\\' : *p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r' : 0;
		if (escaped == 0)
			continue;
		appendBinaryStringInfo(buf, start, p - start);
		appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, escaped);
		start = p + 1;
	}
	appendBinaryStringInfo(buf, start, p - start);
}

void
AppendRow(CopyRun *run, StringInfo buf, const Datum *values, const bool *nulls)
{
	TupleDesc desc = RelationGetDescr(run->rel);
	bool first = true;
	for (int i = 0; i < run->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
			continue;
		if (!first)
			appendStringInfoChar(buf, '\t');
		first = false;
		if (nulls[i])
			appendStringInfoString(buf, "\\N");
		else
			AppendCopyText(buf, OutputFunctionCall(&run->out_functions[i], values[i]));
	}
	appendStringInfoChar(buf, '\n');
}

/* The row number a shard's COPY error names ("COPY name, line N"), or 0. */
uint64
ShardLineOf(const char *context)
{
	const char *line = context != NULL ? strstr(context, ", line ") : NULL;
	return line != NULL ? strtoull(line + strlen(", line "), NULL, 10) : 0;
}

/*
 * A shard's COPY failed on row N of its batch: the error is raised as PostgreSQL raises a COPY
 * error, naming the distributed table and the line of the input that row came from.
 */
[[noreturn]] void
ReportShardError(Relation rel, const uint64 *lines, int line_count, PGresult *result, PGconn *conn, const char *sql)
{
	if (result == NULL || PQresultErrorField(result, PG_DIAG_SQLSTATE) == NULL)
		remote::ReportRemoteError(result, conn, sql);
	const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
	char *message = pstrdup(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
	const char *detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(result, PG_DIAG_MESSAGE_HINT);
	uint64 row = ShardLineOf(PQresultErrorField(result, PG_DIAG_CONTEXT));
	uint64 line = row >= 1 && row <= (uint64) line_count ? lines[row - 1] : 0;
	char *detail_copy = detail != NULL ? pstrdup(detail) : NULL;
	char *hint_copy = hint != NULL ? pstrdup(hint) : NULL;
	int code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
	PQclear(result);
	if (line == 0)
		ereport(ERROR,
		        (errcode(code), errmsg_internal("%s", message), detail_copy ? errdetail_internal("%s", detail_copy) : 0,
		         hint_copy ? errhint("%s", hint_copy) : 0, errcontext("COPY %s", RelationGetRelationName(rel))));
	ereport(ERROR, (errcode(code), errmsg_internal("%s", message),
	                detail_copy ? errdetail_internal("%s", detail_copy) : 0, hint_copy ? errhint("%s", hint_copy) : 0,
	                errcontext("COPY %s, line " UINT64_FORMAT, RelationGetRelationName(rel), line)));
}

/* The end of the COPY the worker may still be running: its error, if any, becomes this statement's. */
void
FinishWorker(CopyRun *run, WorkerStream *worker)
{
	if (worker->running_sql == NULL)
		return;
	const char *sql = worker->running_sql;
	worker->running_sql = NULL;
	PGresult *result = remote::WaitForResults(worker->conn, worker->serverid, "while waiting for", false);
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
		ReportShardError(run->rel, worker->running_lines, worker->running_line_count, result, worker->conn, sql);
	PQclear(result);
}

WorkerStream *
WorkerFor(CopyRun *run, Oid serverid)
{
	for (int i = 0; i < run->worker_count; i++)
		if (run->workers[i].serverid == serverid)
			return &run->workers[i];
	WorkerStream *worker = &run->workers[run->worker_count++];
	worker->serverid = serverid;
	worker->conn = remote::CopyConnection(serverid);
	worker->running_sql = NULL;
	return worker;
}

/* Sends buffer to a remote shard as one COPY, and leaves the worker to it. */
void
FlushRemote(CopyRun *run, int index, const catalog::CachedShard *shard, StringInfo buffer)
{
	WorkerStream *worker = WorkerFor(run, shard->serverid);
	FinishWorker(run, worker);
	char *sql = psprintf("COPY %s (%s) FROM STDIN", RemoteTableName(shard->relid), run->columns);
	elog(DEBUG2, "fdwshard: on server %u: %s (%d bytes)", shard->serverid, sql, buffer->len);
	if (!PQsendQuery(worker->conn, sql))
		remote::ReportRemoteError(NULL, worker->conn, sql);
	PGresult *result = remote::WaitForResults(worker->conn, worker->serverid, "while waiting for", true);
	if (PQresultStatus(result) != PGRES_COPY_IN)
		remote::ReportRemoteError(result, worker->conn, sql);
	PQclear(result);
	if (PQputCopyData(worker->conn, buffer->data, buffer->len) != 1 || PQputCopyEnd(worker->conn, NULL) != 1)
		remote::ReportRemoteError(NULL, worker->conn, sql);
	worker->running_sql = sql;
	worker->running_lines = run->lines[index];
	worker->running_line_count = run->line_counts[index];
	run->lines[index] = (uint64 *) palloc(sizeof(uint64) * run->line_capacity[index]);
	run->line_counts[index] = 0;
}

/* Runs PostgreSQL's COPY of buffer into a local shard, which checks and indexes as any COPY does. */
void
FlushLocal(CopyRun *run, int index, const catalog::CachedShard *shard, StringInfo buffer)
{
	Relation rel = table_open(shard->relid, RowExclusiveLock);
	ParseState *pstate = make_parsestate(NULL);
	/* CopyFrom's executor state is built from the parse state's range table. */
	(void) addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	local_source = buffer;
	local_offset = 0;
	CopyFromState cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, ReadLocalSource, run->column_names, NIL);
	MemoryContext context = CurrentMemoryContext;
	PG_TRY();
	{
		(void) CopyFrom(cstate);
	}
	PG_CATCH();
	{
		/* Name the distributed table and the input's line, as a COPY into a plain table would. */
		MemoryContextSwitchTo(context);
		ErrorData *edata = CopyErrorData();
		uint64 row = ShardLineOf(edata->context);
		if (row >= 1 && row <= (uint64) run->line_counts[index])
		{
			FlushErrorState();
			edata->context =
			    psprintf("COPY %s, line " UINT64_FORMAT, RelationGetRelationName(run->rel), run->lines[index][row - 1]);
			ReThrowError(edata);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	run->line_counts[index] = 0;
	EndCopyFrom(cstate);
	local_source = NULL;
	free_parsestate(pstate);
	table_close(rel, NoLock);
}

void
Flush(CopyRun *run, int index)
{
	StringInfo buffer = &run->buffers[index];
	if (buffer->len == 0)
		return;
	const catalog::CachedShard *shard = &run->table->shards[index];
	if (OidIsValid(shard->serverid))
		FlushRemote(run, index, shard, buffer);
	else
		FlushLocal(run, index, shard, buffer);
	resetStringInfo(buffer);
}

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

void
PrepareRun(CopyRun *run, Relation rel, const catalog::CachedTable *table)
{
	TupleDesc desc = RelationGetDescr(rel);
	StringInfoData columns;
	initStringInfo(&columns);
	run->table = table;
	run->rel = rel;
	run->natts = desc->natts;
	run->out_functions = (FmgrInfo *) palloc0(sizeof(FmgrInfo) * desc->natts);
	run->column_names = NIL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped)
			continue;
		Oid output;
		bool varlena;
		getTypeOutputInfo(att->atttypid, &output, &varlena);
		fmgr_info(output, &run->out_functions[i]);
		appendStringInfo(&columns, "%s%s", columns.len > 0 ? ", " : "", quote_identifier(NameStr(att->attname)));
		run->column_names = lappend(run->column_names, makeString(pstrdup(NameStr(att->attname))));
	}
	run->columns = columns.data;
	run->buffers = (StringInfoData *) palloc0(sizeof(StringInfoData) * table->shard_count);
	for (int i = 0; i < table->shard_count; i++)
		initStringInfo(&run->buffers[i]);
	run->lines = (uint64 **) palloc(sizeof(uint64 *) * table->shard_count);
	run->line_counts = (int *) palloc0(sizeof(int) * table->shard_count);
	run->line_capacity = (int *) palloc(sizeof(int) * table->shard_count);
	for (int i = 0; i < table->shard_count; i++)
	{
		run->line_capacity[i] = 256;
		run->lines[i] = (uint64 *) palloc(sizeof(uint64) * run->line_capacity[i]);
	}
	run->workers = (WorkerStream *) palloc0(sizeof(WorkerStream) * table->shard_count);
	run->worker_count = 0;
}

/* Reads, routes and sends every row; returns how many. */
uint64
RunCopy(CopyRun *run, CopyFromState cstate)
{
	const catalog::CachedTable *table = run->table;
	int dist = table->dist_attnum - 1;
	Oid dist_collation = TupleDescAttr(RelationGetDescr(run->rel), dist)->attcollation;
	EState *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	MemoryContext batch_context =
	    AllocSetContextCreate(CurrentMemoryContext, "fdwshard COPY batch", ALLOCSET_DEFAULT_SIZES);
	Datum *values = (Datum *) palloc(sizeof(Datum) * run->natts * kBatchRows);
	bool *nulls = (bool *) palloc(sizeof(bool) * run->natts * kBatchRows);
	int *shard_of = (int *) palloc(sizeof(int) * kBatchRows);
	uint64 *line_of = (uint64 *) palloc(sizeof(uint64) * kBatchRows);
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
			Datum *row_values = values + (size_t) count * run->natts;
			bool *row_nulls = nulls + (size_t) count * run->natts;
			if (!NextCopyFrom(cstate, econtext, row_values, row_nulls))
			{
				done = true;
				break;
			}
			if (row_nulls[dist])
				ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
				                errmsg("null value in distribution column \"%s\" of relation \"%s\"",
				                       NameStr(TupleDescAttr(RelationGetDescr(run->rel), dist)->attname),
				                       RelationGetRelationName(run->rel))));
			line_of[count] = cstate->cur_lineno;
			shard_of[count] =
			    catalog::ShardIndexForHash(table, DatumHash(row_values[dist], table->dist_type, dist_collation));
			count++;
		}
		MemoryContextSwitchTo(old_context);
		error_context_stack = callback.previous;

		/* Printed as the workers read them. */
		int nest_level = remote::SetTransmissionModes();
		for (int row = 0; row < count; row++)
		{
			int index = shard_of[row];
			AppendRow(run, &run->buffers[index], values + (size_t) row * run->natts, nulls + (size_t) row * run->natts);
			if (run->line_counts[index] == run->line_capacity[index])
			{
				run->line_capacity[index] *= 2;
				run->lines[index] = (uint64 *) repalloc(run->lines[index], sizeof(uint64) * run->line_capacity[index]);
			}
			run->lines[index][run->line_counts[index]++] = line_of[row];
		}
		remote::ResetTransmissionModes(nest_level);
		MemoryContextReset(batch_context);
		ResetExprContext(econtext);
		processed += count;

		for (int i = 0; i < table->shard_count; i++)
			if (run->buffers[i].len >= kFlushBytes || done)
				Flush(run, i);
	}
	for (int i = 0; i < run->worker_count; i++)
		FinishWorker(run, &run->workers[i]);
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

	/* The shards as they are now: the cache's entry may be rebuilt while rows go in. */
	catalog::CachedTable *snapshot = (catalog::CachedTable *) palloc(sizeof(catalog::CachedTable));
	*snapshot = *table;
	snapshot->shards = (catalog::CachedShard *) palloc(sizeof(catalog::CachedShard) * table->shard_count);
	memcpy(snapshot->shards, table->shards, sizeof(catalog::CachedShard) * table->shard_count);
	table = snapshot;

	ParseState *pstate = CheckCopyFrom(stmt, call->query_string, rel);
	CopyFromState cstate =
	    BeginCopyFrom(pstate, rel, NULL, stmt->filename, stmt->is_program, NULL, stmt->attlist, stmt->options);
	CopyRun run;
	PrepareRun(&run, rel, table);
	uint64 processed = RunCopy(&run, cstate);
	EndCopyFrom(cstate);
	table_close(rel, NoLock);
	if (call->qc != NULL)
		SetQueryCompletion(call->qc, CMDTAG_COPY, processed);
	return true;
}

} // namespace fdwshard::commands
