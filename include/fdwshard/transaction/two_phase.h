/* Two-phase commit of transactions that wrote on more than one node. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::transaction
{

/* fdwshard.two_phase_commit: on (default) makes multi-node commits atomic. */
extern bool two_phase_commit;

/*
 * Called when a postgres_fdw connection is first counted as written in a transaction (see
 * remote::WrittenConnections). The first call registers the commit callbacks: after
 * postgres_fdw's own, so they run before it.
 */
void NoteRemoteWrite(void);

/*
 * The gid of the prepared transaction a coordinator's local transaction fxid leaves through user
 * mapping umid: fdwshard_<system identifier>_<database>_<full xid>_<user mapping>. Recovery
 * finds this coordinator's and database's by the prefix (GidPrefix) and reads the xid back.
 */
char *TransactionGid(FullTransactionId fxid, Oid umid);
char *GidPrefix(void);

/* Defines the GUCs. */
void InitTwoPhaseCommit(void);

} // namespace fdwshard::transaction
