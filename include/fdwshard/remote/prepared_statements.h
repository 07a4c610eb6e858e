/* The statements fdwshard has prepared on each of its own connections to a worker. */
#pragma once

#include "fdwshard/remote/own_connection.h"

namespace fdwshard::remote
{

/*
 * The name of sql prepared on connection, preparing it first and waiting for that (one round
 * trip); NULL when the connection holds its limit of statements (then run sql unnamed).
 */
const char *EnsurePrepared(OwnConnection *connection, const char *sql, int nparams, const Oid *types);

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
