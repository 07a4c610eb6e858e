/* The shared budget of connections to each worker, across every backend of the coordinator. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/* fdwshard.worker_connection_limit: connections to one worker from all backends (-1: no limit). */
extern int worker_connection_limit;

/* Room for a worker's "host:port" (longer ones are cut: such a worker shares its entries with others). */
constexpr int kWorkerTargetLength = 128;

/*
 * host:port of serverid's worker, as libpq would resolve the server's options (defaults
 * included): the key of what the coordinator keeps per worker in shared memory, shared by the
 * databases and foreign servers that reach the same worker.
 */
void WorkerTarget(Oid serverid, char *target);

/* A slot of the budget a connection holds; -1: none (no limit, or no slot taken). */
using BudgetSlot = int;

/*
 * Takes a slot for a new connection to serverid's worker. With wait, waits (bounded by
 * fdwshard.connection_wait_timeout, interruptible) until another backend gives one back,
 * closing this backend's own idle connections that others wait for meanwhile; without wait,
 * returns -1 when the budget is spent. Also -1 when there is no limit. in_transaction: the
 * caller's transaction already holds connections it cannot give back before it ends; it may
 * go a quarter past the limit rather than wait for backends that may be waiting for it.
 */
BudgetSlot ReserveConnection(Oid serverid, bool wait, bool in_transaction);

/* Gives back what ReserveConnection took (-1: nothing). */
void ReleaseConnection(BudgetSlot slot);

/* Whether a backend waits for a connection to the worker of slot. */
bool ConnectionWanted(BudgetSlot slot);

/* Whether any backend waits for a connection to any worker. */
bool AnyConnectionWanted(void);

/* Shared memory, GUCs and the transaction-end callback (from _PG_init). */
void InitConnectionBudget(void);

} // namespace fdwshard::remote
