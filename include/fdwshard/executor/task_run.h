/* One run of a scan's foreign shard tasks: every worker at once, several connections per worker for reads. */
#pragma once

#include "fdwshard/executor/shard_tasks.h"
#include "fdwshard/remote/own_connection.h"

namespace fdwshard::executor
{

/* fdwshard.pool_size: connections one multi-shard read may use on each worker. */
extern int pool_size;

/* fdwshard.combine_shard_reads: a pool connection reads its batch of a node's shards with one statement. */
extern bool combine_shard_reads;

/* A connection a run sends tasks on, one after another. */
struct TaskChannel
{
	Oid serverid;
	remote::OwnConnection *own; /* a pool connection; NULL: postgres_fdw's connection of the transaction */
	PGconn *conn;
	int group;      /* the worker whose tasks it takes */
	int running;    /* the task sent and not yet read, or -1 */
	PGresult *last; /* the running task's last result so far */
	int *batch;     /* the tasks sent together, in order; running is batch[batch_next] */
	int batch_count;
	int batch_next;
	char *combined_sql; /* the one statement that reads all the batch's shards (see ShardCombine), or NULL */
	bool drained;       /* the connection has nothing more to read: the batch is over */
	bool readable;      /* the last wait saw data on its socket, not read yet */
	/* A pool connection's batch goes as a pipeline (statements prepared on their second use there). */
	bool pipelined;
	bool *prepare_queued;  /* by batch position: its PREPARE's result comes before its own */
	bool awaiting_prepare; /* the running task's PREPARE result is not read yet */
	bool failed;           /* an error came: the rest of the pipeline is skipped up to its sync */
};

/* A worker's tasks, taken in order by its channels, batch at a time. */
struct TaskGroup
{
	Oid serverid;
	int *tasks;
	int count;
	int next;
	int batch; /* tasks a channel sends in one round trip */
};

/* C-style, in the caller's memory context; AbandonShardTaskRun cleans up after an error. */
struct ShardTaskRun
{
	ShardTaskScan *scan;
	int nparams;
	const Oid *types;
	const char *const *values;
	ShardResultFn on_result;
	void *arg;
	TaskGroup *groups;
	int group_count;
	TaskChannel *channels;
	int channel_count;
};

/*
 * Prepares a run of scan's foreign tasks with the statement's parameters and picks the
 * connections: a read (scan->read_only) in a READ COMMITTED transaction that has not used the
 * worker's postgres_fdw connection yet goes over up to fdwshard.pool_size connections of the
 * pool, as far as the connection budget allows (at least one); anything else (writes, reads
 * after this transaction's writes, REPEATABLE READ) over postgres_fdw's connection, which
 * holds the remote transaction and sees its writes.
 */
void StartShardTaskRun(ShardTaskRun *run, ShardTaskScan *scan, int nparams, const Oid *types, const char *const *values,
                       ShardResultFn on_result, void *arg);

/* Sends the first task of every channel. */
void SendShardTasks(ShardTaskRun *run);

/* Reads results as they come, each channel sending its worker's next task when it has read one. */
void FinishShardTasks(ShardTaskRun *run);

/* Gives the pool connections back; those still running a task (after an error) are stopped and closed. */
void EndShardTaskRun(ShardTaskRun *run);

/* Defines fdwshard.pool_size and fdwshard.combine_shard_reads. */
void InitTaskRun(void);

} // namespace fdwshard::executor
