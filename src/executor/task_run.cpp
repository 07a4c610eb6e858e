/*
 * Running a scan's foreign shard tasks (see executor/task_run.h). Every worker works at once;
 * a read that may leave the transaction's own connection runs on several connections of the
 * worker at once, so a worker with many cores scans several shards at a time. Results are read
 * as they come, from whichever connection has one, and each connection then sends its worker's
 * next task.
 */
#include "fdwshard/executor/task_run.h"

#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/node_wait.h"
#include "fdwshard/remote/prepared_statements.h"

extern "C"
{
#include "storage/proc.h"
#include "utils/wait_event.h"
}

namespace fdwshard::executor
{

int pool_size = 4;
bool combine_shard_reads = true;

namespace
{

/* How many channels of the pool a group of count tasks gets at most. */
int
PoolChannels(int count)
{
	return Min(count, pool_size);
}

/*
 * Tasks a pool connection sends in one round trip: a worker's shards split evenly over its
 * connections, so that a read of 128 shards of a worker costs its 4 connections one round trip
 * each instead of 32. Capped, so that results keep coming while a worker works.
 */
constexpr int kMaxBatch = 64;

/*
 * A pipeline's statements are read by the worker as they come while it sends results back: a
 * connection that blocks writing a long pipeline to a worker that blocks writing results would
 * wait forever. What fits in the sockets' buffers is sent as a pipeline; longer batches as one
 * message.
 */
constexpr size_t kMaxPipelineBytes = 64 * 1024;

/* Whether the tasks of serverid may leave the transaction's postgres_fdw connection. */
bool
MayUsePool(const ShardTaskScan *scan, Oid serverid)
{
	return scan->read_only && XactIsoLevel == XACT_READ_COMMITTED &&
	       !remote::FdwConnectionUsedInTransaction(serverid, GetUserId());
}

void
AddChannel(ShardTaskRun *run, int group, remote::OwnConnection *own)
{
	TaskChannel *channel = &run->channels[run->channel_count++];
	channel->serverid = run->groups[group].serverid;
	channel->own = own;
	channel->conn = own != NULL ? own->conn : NULL;
	channel->group = group;
	channel->running = -1;
	channel->last = NULL;
	channel->batch = (int *) palloc0(sizeof(int) * kMaxBatch);
	channel->prepare_queued = (bool *) palloc0(sizeof(bool) * kMaxBatch);
	channel->batch_count = 0;
	channel->batch_next = 0;
	channel->combined_sql = NULL;
	channel->drained = false;
	channel->readable = false;
	if (own != NULL)
		own->lent = true;
}

/* Takes up to wanted pool connections to group's worker: the first waits for the budget, the others do not. */
void
AddPoolChannels(ShardTaskRun *run, int group, int wanted)
{
	int taken = 0;
	/* Indexes held by runs this one is nested in are skipped: twice the pool size is enough to look. */
	for (int index = 0; index < 2 * pool_size && taken < wanted; index++)
	{
		remote::OwnConnection *own =
		    remote::GetOwnConnection(run->groups[group].serverid, index, taken == 0, /* defer */ true);
		if (own == NULL)
			continue; /* lent to an outer run, or the budget is spent: the channels taken do the work */
		AddChannel(run, group, own);
		taken++;
	}
	if (taken == 0)
		AddChannel(run, group, NULL); /* every index is lent to outer runs: the transaction's connection */
}

/*
 * A pool connection's batch (the tasks of a multi-shard read) in one pipeline, one round trip:
 * its count statements (one per task without parameters, or the one that reads them all, with
 * run's parameters), each prepared on its second use on this connection, so that a session
 * repeating a read over many shards has the workers plan each statement once, then one sync.
 */
void
SendPipeline(TaskChannel *channel, const char *const *sqls, int count, const ShardTaskRun *run)
{
	PGconn *conn = channel->conn;
	if (!PQenterPipelineMode(conn))
		remote::ReportRemoteError(NULL, conn, sqls[0]);
	channel->pipelined = true;
	channel->failed = false;
	channel->own->in_flight = true;
	for (int i = 0; i < count; i++)
	{
		const char *sql = sqls[i];
		elog(DEBUG2, "fdwshard: on server %u over the pool: %s", channel->serverid, sql);
		/* Counted as prepared once queued: if the pipeline fails, ReadPipeline marks the connection stale. */
		const char *name = remote::PreparedName(channel->own, sql, run->nparams, run->types,
		                                        remote::PrepareOn::kSecondUse, &channel->prepare_queued[i]);
		bool sent = (!channel->prepare_queued[i] || PQsendPrepare(conn, name, sql, run->nparams, run->types)) &&
		            (name != NULL ? PQsendQueryPrepared(conn, name, run->nparams, run->values, NULL, NULL, 0)
		                          : PQsendQueryParams(conn, sql, run->nparams, run->types, run->values, NULL, NULL, 0));
		if (!sent)
			remote::ReportRemoteError(NULL, conn, sql);
	}
	if (!PQpipelineSync(conn))
		remote::ReportRemoteError(NULL, conn, sqls[0]);
	channel->awaiting_prepare = channel->prepare_queued[0];
}

/* The statements of channel's batch: one per task, or the one that reads them all. */
int
Statements(const TaskChannel *channel)
{
	return channel->combined_sql != NULL ? 1 : channel->batch_count;
}

/* The SQL of channel's running task, or of the statement that reads its whole batch. */
const char *
RunningSql(const ShardTaskRun *run, const TaskChannel *channel)
{
	return channel->combined_sql != NULL ? channel->combined_sql : run->scan->tasks[channel->running].sql;
}

/*
 * Sends channel's next tasks. A pool connection takes up to its group's batch of tasks in one
 * round trip: one statement that reads all their shards when the scan allows it (ShardCombine;
 * with parameters too), else a pipeline of their statements (SendPipeline), or one
 * simple-protocol message of them when they are long; the transaction's connection, and other
 * statements with parameters, one task.
 */
bool
SendNext(ShardTaskRun *run, TaskChannel *channel)
{
	TaskGroup *group = &run->groups[channel->group];
	if (group->next == group->count)
		return false;
	bool pool = channel->own != NULL && run->nparams == 0;
	/* With parameters too: they are the same for every shard, and appear once in the combined statement. */
	bool combine = channel->own != NULL && run->scan->combine != NULL && combine_shard_reads;
	int size = pool || combine ? Min(group->batch, group->count - group->next) : 1;

	channel->batch_count = size;
	channel->batch_next = 0;
	channel->drained = false;
	for (int i = 0; i < size; i++)
		channel->batch[i] = group->tasks[group->next++];
	channel->running = channel->batch[0];
	if (channel->combined_sql != NULL)
		pfree(channel->combined_sql);
	channel->combined_sql = NULL;
	const char **sqls = (const char **) palloc(sizeof(char *) * size);
	size_t bytes = 0;
	for (int i = 0; i < size; i++)
	{
		sqls[i] = run->scan->tasks[channel->batch[i]].sql;
		bytes += pool ? strlen(sqls[i]) : 0;
	}
	if (combine && size > 1)
	{
		channel->combined_sql = CombinedShardSql(run->scan->combine, sqls, size);
		SendPipeline(channel, &channel->combined_sql, 1, run);
	}
	else if (pool && bytes <= kMaxPipelineBytes)
		SendPipeline(channel, sqls, size, run);
	else if (channel->own != NULL)
	{
		/* One simple-protocol message, which the worker reads whole before it runs anything. */
		StringInfoData sql;
		initStringInfo(&sql);
		for (int i = 0; i < size; i++)
		{
			const ShardTaskState *task = &run->scan->tasks[channel->batch[i]];
			elog(DEBUG2, "fdwshard: on server %u over the pool: %s", channel->serverid, task->sql);
			appendStringInfo(&sql, "%s%s", i > 0 ? "; " : "", task->sql);
		}
		channel->own->in_flight = true;
		bool sent =
		    size > 1 ? PQsendQuery(channel->conn, sql.data)
		             : PQsendQueryParams(channel->conn, sql.data, run->nparams, run->types, run->values, NULL, NULL, 0);
		if (!sent)
			remote::ReportRemoteError(NULL, channel->conn, sql.data);
		pfree(sql.data);
	}
	else
		channel->conn = remote::SendParams(channel->serverid, run->scan->tasks[channel->running].sql, run->nparams,
		                                   run->types, run->values, !run->scan->read_only);
	pfree(sqls);
	return true;
}

/*
 * Whether channel has a result to take without waiting: reads the socket only when the last
 * wait said it has data (no system call per channel per pass).
 */
bool
ResultReady(TaskChannel *channel, const char *sql)
{
	while (PQisBusy(channel->conn))
	{
		if (!channel->readable)
			return false;
		channel->readable = false;
		if (!PQconsumeInput(channel->conn))
			remote::ReportRemoteError(NULL, channel->conn, sql);
	}
	return true;
}

/*
 * ReadChannel for a pipeline: each PREPARE queued and each statement is one result then a NULL;
 * the sync ends it. A task other than the last is done with its result; the last one, or an
 * error (the server skips the rest, each an aborted result), once the sync is read.
 */
bool
ReadPipeline(TaskChannel *channel, const char *sql)
{
	for (;;)
	{
		if (!ResultReady(channel, sql))
			return false;
		PGresult *result = PQgetResult(channel->conn);
		if (result == NULL)
			continue; /* the end of one statement's results */
		ExecStatusType status = PQresultStatus(result);
		if (status == PGRES_PIPELINE_SYNC)
		{
			PQclear(result);
			if (!PQexitPipelineMode(channel->conn))
				remote::ReportRemoteError(NULL, channel->conn, sql);
			channel->pipelined = false;
			channel->drained = true;
			return true;
		}
		bool ok = status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
		if (status == PGRES_PIPELINE_ABORTED || channel->failed)
		{
			PQclear(result);
			continue;
		}
		if (!ok)
		{
			/* What was queued after it is not prepared: the connection starts afresh next time. */
			channel->failed = true;
			channel->own->stale = true;
			PQclear(channel->last);
			channel->last = result;
			continue;
		}
		if (channel->awaiting_prepare)
		{
			channel->awaiting_prepare = false;
			PQclear(result);
			continue;
		}
		PQclear(channel->last);
		channel->last = result;
		if (channel->batch_next < Statements(channel) - 1)
		{
			channel->awaiting_prepare = channel->prepare_queued[channel->batch_next + 1];
			return true;
		}
	}
}

/*
 * Reads what channel's connection has; true when the running task's results are all in
 * (channel->last). In a batch, each statement has one result: a task other than the last is
 * done with its result; the last one, or an error (which ends the batch), once the connection
 * has nothing more to read (channel->drained).
 */
bool
ReadChannel(TaskChannel *channel, const char *sql)
{
	if (channel->pipelined)
		return ReadPipeline(channel, sql);
	for (;;)
	{
		if (!ResultReady(channel, sql))
			return false;
		PGresult *result = PQgetResult(channel->conn);
		if (result == NULL)
		{
			channel->drained = true;
			return true;
		}
		PQclear(channel->last);
		channel->last = result;
		ExecStatusType status = PQresultStatus(result);
		if (channel->batch_next < Statements(channel) - 1 && (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK))
			return true;
	}
}

/* The finished task of channel: its rows to the scan, or its error raised. */
void
CompleteTask(ShardTaskRun *run, TaskChannel *channel)
{
	ShardTaskState *task = &run->scan->tasks[channel->running];
	PGresult *result = channel->last;
	const char *sql = RunningSql(run, channel);

	channel->last = NULL;
	/* A statement that read the whole batch: its first task takes the rows, the others are done with it. */
	task->statement_shards = channel->combined_sql != NULL ? channel->batch_count : 1;
	for (int i = 1; channel->combined_sql != NULL && i < channel->batch_count; i++)
		run->scan->tasks[channel->batch[i]].statement_shards = 0;
	if (channel->drained)
	{
		channel->running = -1;
		channel->batch_count = 0;
		if (channel->own != NULL)
			channel->own->in_flight = false;
	}
	else
		channel->running = channel->batch[++channel->batch_next]; /* the batch goes on: still busy */
	ExecStatusType status = PQresultStatus(result);
	if (result == NULL || (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK))
		remote::ReportRemoteError(result, channel->conn, sql);
	run->scan->result = result;
	ConsumeShardResult(run->scan, task, run->on_result, run->arg);
}

/* Waits until a running channel's socket has data (or the latch is set); marks the channels that have some. */
void
WaitForChannels(ShardTaskRun *run)
{
	WaitEventSet *set = CreateWaitEventSet(CurrentMemoryContext, run->channel_count + 2);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < run->channel_count; i++)
		if (run->channels[i].running >= 0)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, PQsocket(run->channels[i].conn), NULL, &run->channels[i]);
	WaitEvent *events = (WaitEvent *) palloc0(sizeof(WaitEvent) * (run->channel_count + 2));
	int count = WaitEventSetWait(set, -1L, events, run->channel_count + 2, PG_WAIT_EXTENSION);
	for (int i = 0; i < count; i++)
		if ((events[i].events & WL_SOCKET_READABLE) && events[i].user_data != NULL)
			((TaskChannel *) events[i].user_data)->readable = true;
	pfree(events);
	FreeWaitEventSet(set);
	ResetLatch(MyLatch);
}

} // namespace

void
StartShardTaskRun(ShardTaskRun *run, ShardTaskScan *scan, int nparams, const Oid *types, const char *const *values,
                  ShardResultFn on_result, void *arg)
{
	memset(run, 0, sizeof(ShardTaskRun));
	run->scan = scan;
	run->nparams = nparams;
	run->types = types;
	run->values = values;
	run->on_result = on_result;
	run->arg = arg;

	/* Groups in order of first appearance: each worker's tasks in the planner's order. */
	run->groups = (TaskGroup *) palloc0(sizeof(TaskGroup) * Max(scan->task_count, 1));
	for (int i = 0; i < scan->task_count; i++)
	{
		const ShardTaskState *task = &scan->tasks[i];
		if (task->sql == NULL)
			continue;
		int group = 0;
		while (group < run->group_count && run->groups[group].serverid != task->serverid)
			group++;
		if (group == run->group_count)
		{
			run->groups[group].serverid = task->serverid;
			run->groups[group].tasks = (int *) palloc(sizeof(int) * scan->task_count);
			run->group_count++;
		}
		run->groups[group].tasks[run->groups[group].count++] = i;
	}

	int most = 0;
	for (int group = 0; group < run->group_count; group++)
		most += Max(PoolChannels(run->groups[group].count), 1);
	run->channels = (TaskChannel *) palloc0(sizeof(TaskChannel) * Max(most, 1));
	for (int group = 0; group < run->group_count; group++)
	{
		int first = run->channel_count;
		if (MayUsePool(scan, run->groups[group].serverid))
			AddPoolChannels(run, group, PoolChannels(run->groups[group].count));
		else
			AddChannel(run, group, NULL);
		int channels = run->channel_count - first;
		run->groups[group].batch = Min((run->groups[group].count + channels - 1) / channels, kMaxBatch);
	}
	/* New pool connections, to every worker, made at once. */
	remote::OwnConnection **owns = (remote::OwnConnection **) palloc(sizeof(remote::OwnConnection *) * Max(most, 1));
	for (int i = 0; i < run->channel_count; i++)
		owns[i] = run->channels[i].own;
	remote::FinishOwnConnecting(owns, run->channel_count);
	pfree(owns);
}

void
SendShardTasks(ShardTaskRun *run)
{
	for (int i = 0; i < run->channel_count; i++)
		(void) SendNext(run, &run->channels[i]);
}

void
FinishShardTasks(ShardTaskRun *run)
{
	remote::NodeContext context;
	bool context_pushed = false;

	for (;;)
	{
		TaskChannel *waiting = NULL;
		bool progressed = false;
		for (int i = 0; i < run->channel_count; i++)
		{
			TaskChannel *channel = &run->channels[i];
			if (channel->running < 0)
				continue;
			/* Every task whose results are in: a batch's come several at once. */
			while (channel->running >= 0 && ReadChannel(channel, RunningSql(run, channel)))
			{
				if (context_pushed)
					remote::PopNodeContext(&context);
				context_pushed = false;
				CompleteTask(run, channel);
				if (channel->running < 0)
					(void) SendNext(run, channel);
				progressed = true;
			}
			if (channel->running >= 0 && waiting == NULL)
				waiting = channel;
		}
		if (waiting == NULL)
			break;
		if (progressed)
			continue;
		/* A cancel or timeout while waiting names a worker that has not answered. */
		if (!context_pushed)
			remote::PushNodeContext(&context, waiting->serverid, "while waiting for");
		context_pushed = true;
		WaitForChannels(run);
		CHECK_FOR_INTERRUPTS();
	}
	if (context_pushed)
		remote::PopNodeContext(&context);
}

void
EndShardTaskRun(ShardTaskRun *run)
{
	List *unresponsive = NIL; /* servers that did not take a cancel: their other connections just close */
	for (int i = 0; i < run->channel_count; i++)
	{
		TaskChannel *channel = &run->channels[i];
		PQclear(channel->last);
		channel->last = NULL;
		if (channel->own == NULL)
			continue;
		if (channel->running >= 0 &&
		    !remote::AbandonOwnConnection(channel->own, !list_member_oid(unresponsive, channel->serverid)))
			unresponsive = lappend_oid(unresponsive, channel->serverid);
		channel->own->lent = false;
		channel->own = NULL;
		channel->running = -1;
	}
}

void
InitTaskRun(void)
{
	DefineCustomIntVariable("fdwshard.pool_size", "Connections a multi-shard read may use on each worker at once.",
	                        "Reads in READ COMMITTED transactions that have not used the worker yet; the others, "
	                        "and writes, run on the transaction's one connection per worker.",
	                        &pool_size, 4, 1, 64, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("fdwshard.combine_shard_reads",
	                         "A pool connection reads its batch of a worker's shards with one statement.",
	                         "The shards' rows as one UNION ALL under the read's own statement, planned and run "
	                         "once by the worker; off: one statement per shard, in one pipeline.",
	                         &combine_shard_reads, true, PGC_USERSET, 0, NULL, NULL, NULL);
}

} // namespace fdwshard::executor
