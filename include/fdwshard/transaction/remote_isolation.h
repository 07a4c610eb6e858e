/* Remote transactions at the isolation level of the local one (READ COMMITTED stays READ COMMITTED). */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::transaction
{

/*
 * Called right after postgres_fdw's GetConnection handed out conn for mapping. The
 * first time in a READ COMMITTED local transaction, at top level, that connection's remote
 * transaction (which postgres_fdw always opens at REPEATABLE READ) is set to READ COMMITTED,
 * before it runs any query. Later uses, and first uses inside a subtransaction (postgres_fdw has
 * already sent SAVEPOINT: too late), are left as they are, and so are servers with
 * use_remote_estimate (postgres_fdw queries them while planning, before fdwshard sees them).
 */
void SettleRemoteIsolation(UserMapping *mapping, PGconn *conn);

/*
 * Before COPY FROM, TRUNCATE or ANALYZE of a distributed table: postgres_fdw reaches its shards
 * outside the executor. At every isolation level; COPY and TRUNCATE count as writes.
 */
void SettleForUtility(Node *parsetree);

/* The ExecutorStart hook that settles the connections a plan's foreign scans and modifications opened. */
void InitRemoteIsolation(void);

} // namespace fdwshard::transaction
