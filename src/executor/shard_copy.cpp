/*
 * Rows into a distributed table's shards in batches (see executor/shard_copy.h): the fast path
 * of COPY FROM, of INSERT ... SELECT and of distributing a table that holds rows. PostgreSQL's
 * insert into the partitioned table would send a foreign shard one row per round trip. Values
 * are printed under postgres_fdw's transmission settings (ISO dates, UTC, full float precision),
 * a batch of rows at a time, since the caller made them under the session's.
 */
#include "fdwshard/executor/shard_copy.h"

#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"
#include "fdwshard/remote/node_wait.h"

extern "C"
{
#include "commands/copy.h"
}

namespace fdwshard::executor
{

namespace
{

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

} // namespace

/* C-style: in the memory context of BeginShardCopy's caller. */
struct ShardCopy
{
	const catalog::CachedTable *table;
	Relation rel;
	const char *label;
	int natts;
	Oid dist_collation;
	FmgrInfo *out_functions;   /* per attribute; unused for those not sent */
	bool *sent;                /* per attribute: sent (not dropped, not generated) */
	const char **remote_names; /* per shard index: where ShardCopyRedirect sends it, or NULL */
	char *columns;             /* the quoted column list every shard's COPY names */
	List *column_names;        /* the same as a list of String, for local shards */
	StringInfoData *buffers;   /* per shard index */
	bool has_lines;            /* rows carry their input line */
	uint64 **lines;            /* per shard index: the input line of each row in its buffer */
	int *line_counts;          /* per shard index: rows in its buffer */
	int *line_capacity;
	WorkerStream *workers;
	int worker_count;
	int64 *rows; /* per shard index: rows added, for EXPLAIN ANALYZE */
};

namespace
{

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
AppendRow(ShardCopy *copy, StringInfo buf, const Datum *values, const bool *nulls)
{
	bool first = true;
	for (int i = 0; i < copy->natts; i++)
	{
		if (!copy->sent[i])
			continue;
		if (!first)
			appendStringInfoChar(buf, '\t');
		first = false;
		if (nulls[i])
			appendStringInfoString(buf, "\\N");
		else
			AppendCopyText(buf, OutputFunctionCall(&copy->out_functions[i], values[i]));
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
 * error, naming the distributed table and the line of the input that row came from, or, for
 * rows without lines, as the shard raised it.
 */
[[noreturn]] void
ReportShardError(ShardCopy *copy, const uint64 *lines, int line_count, PGresult *result, PGconn *conn, const char *sql)
{
	if (result == NULL || PQresultErrorField(result, PG_DIAG_SQLSTATE) == NULL)
		remote::ReportRemoteError(result, conn, sql);
	const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
	char *message = pstrdup(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
	const char *detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(result, PG_DIAG_MESSAGE_HINT);
	uint64 row = ShardLineOf(PQresultErrorField(result, PG_DIAG_CONTEXT));
	uint64 line = copy->has_lines && row >= 1 && row <= (uint64) line_count ? lines[row - 1] : 0;
	char *detail_copy = detail != NULL ? pstrdup(detail) : NULL;
	char *hint_copy = hint != NULL ? pstrdup(hint) : NULL;
	int code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
	PQclear(result);
	if (!copy->has_lines)
		ereport(ERROR,
		        (errcode(code), errmsg_internal("%s", message), detail_copy ? errdetail_internal("%s", detail_copy) : 0,
		         hint_copy ? errhint("%s", hint_copy) : 0));
	if (line == 0)
		ereport(ERROR,
		        (errcode(code), errmsg_internal("%s", message), detail_copy ? errdetail_internal("%s", detail_copy) : 0,
		         hint_copy ? errhint("%s", hint_copy) : 0, errcontext("%s", copy->label)));
	ereport(ERROR,
	        (errcode(code), errmsg_internal("%s", message), detail_copy ? errdetail_internal("%s", detail_copy) : 0,
	         hint_copy ? errhint("%s", hint_copy) : 0, errcontext("%s, line " UINT64_FORMAT, copy->label, line)));
}

/* The end of the COPY the worker may still be running: its error, if any, becomes this statement's. */
void
FinishWorker(ShardCopy *copy, WorkerStream *worker)
{
	if (worker->running_sql == NULL)
		return;
	const char *sql = worker->running_sql;
	worker->running_sql = NULL;
	PGresult *result = remote::WaitForResults(worker->conn, worker->serverid, "while waiting for", false);
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
		ReportShardError(copy, worker->running_lines, worker->running_line_count, result, worker->conn, sql);
	PQclear(result);
}

WorkerStream *
WorkerFor(ShardCopy *copy, Oid serverid)
{
	for (int i = 0; i < copy->worker_count; i++)
		if (copy->workers[i].serverid == serverid)
			return &copy->workers[i];
	WorkerStream *worker = &copy->workers[copy->worker_count++];
	worker->serverid = serverid;
	worker->conn = remote::CopyConnection(serverid);
	worker->running_sql = NULL;
	return worker;
}

/* Sends buffer to a remote shard as one COPY, and leaves the worker to it. */
void
FlushRemote(ShardCopy *copy, int index, const catalog::CachedShard *shard, StringInfo buffer)
{
	WorkerStream *worker = WorkerFor(copy, shard->serverid);
	FinishWorker(copy, worker);
	const char *target =
	    copy->remote_names[index] != NULL ? copy->remote_names[index] : remote::ForeignTableRemoteName(shard->relid);
	char *sql = psprintf("COPY %s (%s) FROM STDIN", target, copy->columns);
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
	worker->running_lines = copy->lines[index];
	worker->running_line_count = copy->line_counts[index];
	copy->lines[index] = (uint64 *) palloc(sizeof(uint64) * copy->line_capacity[index]);
	copy->line_counts[index] = 0;
}

/* Runs PostgreSQL's COPY of buffer into a local shard, which checks and indexes as any COPY does. */
void
FlushLocal(ShardCopy *copy, int index, const catalog::CachedShard *shard, StringInfo buffer)
{
	Relation rel = table_open(shard->relid, RowExclusiveLock);
	ParseState *pstate = make_parsestate(NULL);
	/* CopyFrom's executor state is built from the parse state's range table. */
	(void) addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	local_source = buffer;
	local_offset = 0;
	CopyFromState cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, ReadLocalSource, copy->column_names, NIL);
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
		FlushErrorState();
		if (copy->has_lines && row >= 1 && row <= (uint64) copy->line_counts[index])
			edata->context = psprintf("%s, line " UINT64_FORMAT, copy->label, copy->lines[index][row - 1]);
		else if (!copy->has_lines)
			edata->context = NULL; /* the shard's COPY is not the user's statement */
		ReThrowError(edata);
	}
	PG_END_TRY();
	copy->line_counts[index] = 0;
	EndCopyFrom(cstate);
	local_source = NULL;
	free_parsestate(pstate);
	table_close(rel, NoLock);
}

void
Flush(ShardCopy *copy, int index)
{
	StringInfo buffer = &copy->buffers[index];
	if (buffer->len == 0)
		return;
	const catalog::CachedShard *shard = &copy->table->shards[index];
	if (OidIsValid(shard->serverid))
		FlushRemote(copy, index, shard, buffer);
	else
		FlushLocal(copy, index, shard, buffer);
	resetStringInfo(buffer);
}

} // namespace

ShardCopy *
BeginShardCopy(Relation rel, const catalog::CachedTable *table, const char *label)
{
	ShardCopy *copy = (ShardCopy *) palloc0(sizeof(ShardCopy));
	catalog::CachedTable *snapshot = (catalog::CachedTable *) palloc(sizeof(catalog::CachedTable));
	*snapshot = *table;
	snapshot->shards = (catalog::CachedShard *) palloc(sizeof(catalog::CachedShard) * table->shard_count);
	memcpy(snapshot->shards, table->shards, sizeof(catalog::CachedShard) * table->shard_count);
	table = snapshot;

	TupleDesc desc = RelationGetDescr(rel);
	StringInfoData columns;
	initStringInfo(&columns);
	copy->table = table;
	copy->rel = rel;
	copy->label = pstrdup(label);
	copy->natts = desc->natts;
	copy->dist_collation = TupleDescAttr(desc, table->dist_attnum - 1)->attcollation;
	copy->out_functions = (FmgrInfo *) palloc0(sizeof(FmgrInfo) * desc->natts);
	copy->sent = (bool *) palloc0(sizeof(bool) * desc->natts);
	copy->remote_names = (const char **) palloc0(sizeof(const char *) * table->shard_count);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		/* A stored generated column is computed by the shard, as on any insert. */
		copy->sent[i] = !att->attisdropped && att->attgenerated == '\0';
		if (!copy->sent[i])
			continue;
		Oid output;
		bool varlena;
		getTypeOutputInfo(att->atttypid, &output, &varlena);
		fmgr_info(output, &copy->out_functions[i]);
		appendStringInfo(&columns, "%s%s", columns.len > 0 ? ", " : "", quote_identifier(NameStr(att->attname)));
		copy->column_names = lappend(copy->column_names, makeString(pstrdup(NameStr(att->attname))));
	}
	copy->columns = columns.data;
	copy->buffers = (StringInfoData *) palloc0(sizeof(StringInfoData) * table->shard_count);
	copy->lines = (uint64 **) palloc(sizeof(uint64 *) * table->shard_count);
	copy->line_counts = (int *) palloc0(sizeof(int) * table->shard_count);
	copy->line_capacity = (int *) palloc(sizeof(int) * table->shard_count);
	for (int i = 0; i < table->shard_count; i++)
	{
		initStringInfo(&copy->buffers[i]);
		copy->line_capacity[i] = 256;
		copy->lines[i] = (uint64 *) palloc(sizeof(uint64) * copy->line_capacity[i]);
	}
	copy->workers = (WorkerStream *) palloc0(sizeof(WorkerStream) * table->shard_count);
	copy->rows = (int64 *) palloc0(sizeof(int64) * table->shard_count);
	return copy;
}

void
ShardCopyRedirect(ShardCopy *copy, int index, Oid serverid, Oid local_relid, const char *remote_name)
{
	catalog::CachedShard *shard = (catalog::CachedShard *) &copy->table->shards[index];
	shard->serverid = serverid;
	shard->relid = local_relid;
	copy->remote_names[index] = remote_name != NULL ? pstrdup(remote_name) : NULL;
}

void
ShardCopyAdd(ShardCopy *copy, int count, const Datum *values, const bool *nulls, const uint64 *lines)
{
	const catalog::CachedTable *table = copy->table;
	int dist = table->dist_attnum - 1;
	copy->has_lines = lines != NULL;

	/* Printed as the workers read them. */
	int nest_level = remote::SetTransmissionModes();
	for (int row = 0; row < count; row++)
	{
		const Datum *row_values = values + (size_t) row * copy->natts;
		const bool *row_nulls = nulls + (size_t) row * copy->natts;
		if (row_nulls[dist])
			ReportNullDistributionValue(copy->rel, table->dist_attnum);
		int index =
		    catalog::ShardIndexForHash(table, DatumHash(row_values[dist], table->dist_type, copy->dist_collation));
		AppendRow(copy, &copy->buffers[index], row_values, row_nulls);
		copy->rows[index]++;
		if (copy->line_counts[index] == copy->line_capacity[index])
		{
			copy->line_capacity[index] *= 2;
			copy->lines[index] = (uint64 *) repalloc(copy->lines[index], sizeof(uint64) * copy->line_capacity[index]);
		}
		copy->lines[index][copy->line_counts[index]++] = lines != NULL ? lines[row] : 0;
	}
	remote::ResetTransmissionModes(nest_level);

	for (int i = 0; i < table->shard_count; i++)
		if (copy->buffers[i].len >= kFlushBytes)
			Flush(copy, i);
}

void
ReportNullDistributionValue(Relation rel, AttrNumber attnum)
{
	ereport(ERROR,
	        (errcode(ERRCODE_NOT_NULL_VIOLATION),
	         errmsg("null value in distribution column \"%s\" of relation \"%s\"",
	                NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname), RelationGetRelationName(rel))));
}

const int64 *
ShardCopyRowCounts(const ShardCopy *copy)
{
	return copy->rows;
}

void
EndShardCopy(ShardCopy *copy)
{
	for (int i = 0; i < copy->table->shard_count; i++)
		Flush(copy, i);
	for (int i = 0; i < copy->worker_count; i++)
		FinishWorker(copy, &copy->workers[i]);
}

} // namespace fdwshard::executor
