/* The statements fdwshard has prepared on each of its own connections to a worker. */
#pragma once

#include "fdwshard/remote/own_connection.h"

namespace fdwshard::remote
{

/* When a statement is prepared on a connection. */
enum class PrepareOn
{
	kFirstUse,  /* statements with parameters: their texts do not differ by their values */
	kSecondUse, /* statements without: a text run once is never prepared, or texts that differ by
	               their values would fill the worker's memory with plans */
};

/*
 * The name sql (with parameters of types) is prepared under on connection; NULL when it is not
 * (yet) to be prepared there, or the connection holds its limit of statements: then run sql
 * unnamed. *needs_prepare: this use prepares it, counted as prepared now: the caller sends its
 * PREPARE ahead of its execution, in the same round trip, and marks the connection stale if
 * that PREPARE fails.
 */
const char *PreparedName(OwnConnection *connection, const char *sql, int nparams, const Oid *types,
                         PrepareOn prepare_on, bool *needs_prepare);

/* Forgets what was prepared on connection (it is closing). */
void ForgetPrepared(OwnConnection *connection);

} // namespace fdwshard::remote
