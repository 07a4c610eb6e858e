/* Statements that are transactions of their own on any node: a worker through fdwshard's own connection, the
 * coordinator through a loopback connection. */
#pragma once

#include "fdwshard/catalog/metadata.h"
#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/*
 * An autocommit session on a node, for work that must commit on its own while the caller's
 * transaction goes on (an online shard move's replication setup): a worker's is fdwshard's own
 * connection (remote/own_connection.h) as the current user's user mapping; the coordinator's is
 * a libpq connection to itself (fdwshard.node's host, port and dbname, as the current user).
 */
struct NodeSession;

/* The session of node, connected at first use (bounded by fdwshard.connect_timeout, interruptible). */
NodeSession *OpenNodeSession(const catalog::Node *node);

/*
 * Runs sql (one or more statements: one implicit transaction) and returns the first column of the
 * last result's first row (NULL for none or SQL NULL). An error becomes a local ERROR with the
 * node's SQLSTATE; a cancel or timeout first cancels the statement on the node.
 */
char *NodeSessionQuery(NodeSession *session, const char *sql);

/* NodeSessionQuery for cleanup after a failure: an error is reported as a WARNING, not raised; value gets the answer.
 */
bool NodeSessionTry(NodeSession *session, const char *sql, char **value = NULL);

/* Closes the loopback connection (a worker's own connection stays, as fdwshard keeps it). */
void CloseNodeSessions(void);

} // namespace fdwshard::remote
