/* The statements fdwshard has prepared on each of its own connections to a worker. */
#pragma once

#include "fdwshard/remote/own_connection.h"

namespace fdwshard::remote
{

/*
 * The name sql (with parameters of types) is prepared under on connection; NULL when the
 * connection holds its limit of statements (then run sql unnamed). *needs_prepare: a first use,
 * counted as prepared now: the caller sends its PREPARE ahead of its execution, and marks the
 * connection stale if that PREPARE fails.
 */
const char *PreparedName(OwnConnection *connection, const char *sql, int nparams, const Oid *types,
                         bool *needs_prepare);

/*
 * For a pipeline: the name of sql (no parameters) prepared on connection once this is its
 * second use there, its PREPARE queued in the pipeline now when this is that second use
 * (*queued_prepare: one result more to read before the statement's own); NULL for a first use
 * or a full connection (run sql unnamed). A statement run once is never prepared: texts that
 * differ by their values would fill the worker's memory with plans.
 */
const char *PipelinePrepared(OwnConnection *connection, const char *sql, bool *queued_prepare);

/* Forgets what was prepared on connection (it is closing). */
void ForgetPrepared(OwnConnection *connection);

} // namespace fdwshard::remote
