/*
 * One-round-trip execution of statements that are a whole transaction (see remote/autocommit.h).
 * postgres_fdw opens a remote transaction before the first statement and commits it at the end:
 * three round trips for a one-statement transaction. When the client's transaction is that one
 * statement, the worker may run it in its own implicit transaction instead, with the same outcome.
 */
#include "fdwshard/remote/autocommit.h"

#include "fdwshard/core/hash.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/own_connection.h"

namespace fdwshard::remote
{

namespace
{

/* A statement prepared on a user mapping's connection 0, named fdwshard_<n>. */
struct PreparedStatement
{
	uint64 key[2];     /* hash key: user mapping, hash of parameter types and SQL text */
	uint64 generation; /* the connection it was prepared on */
	char name[NAMEDATALEN];
	char *sql; /* in CacheMemoryContext: a hash collision must not run another statement */
	Oid *types;
	int nparams;
};

/* Owned by this file for the life of the backend. */
HTAB *prepared = NULL;

constexpr int kMaxPreparedPerConnection = 1000;

void
EnsureTable()
{
	if (prepared != NULL)
		return;
	HASHCTL ctl;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64) * 2;
	ctl.entrysize = sizeof(PreparedStatement);
	ctl.hcxt = CacheMemoryContext;
	prepared = hash_create("fdwshard prepared statements", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* The name of sql prepared on connection, preparing it first; NULL when not worth it. */
const char *
PreparedName(OwnConnection *connection, const char *sql, int nparams, const Oid *types)
{
	uint64 key[2];
	key[0] = connection->user_mapping;
	key[1] = ((uint64) (uint32) core::HashBytes(types, sizeof(Oid) * nparams) << 32) |
	         (uint32) core::HashBytes(sql, strlen(sql));

	EnsureTable();
	bool found;
	PreparedStatement *statement = (PreparedStatement *) hash_search(prepared, key, HASH_FIND, &found);
	if (statement != NULL && statement->generation == connection->generation)
		return statement->nparams == nparams && memcmp(statement->types, types, sizeof(Oid) * nparams) == 0 &&
		               strcmp(statement->sql, sql) == 0
		           ? statement->name
		           : NULL;
	if (connection->prepared_count >= kMaxPreparedPerConnection)
		return NULL;

	char name[NAMEDATALEN];
	snprintf(name, sizeof(name), "fdwshard_%d", connection->prepared_count + 1);
	connection->in_flight = true;
	if (!PQsendPrepare(connection->conn, name, sql, nparams, types))
		ReportRemoteError(NULL, connection->conn, sql);
	PGresult *result = WaitForOwnResult(connection, sql);
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
		ReportRemoteError(result, connection->conn, sql);
	PQclear(result);

	connection->prepared_count++;
	statement = (PreparedStatement *) hash_search(prepared, key, HASH_ENTER, &found);
	if (found)
	{
		/* Prepared on a connection since closed. */
		pfree(statement->sql);
		pfree(statement->types);
	}
	statement->generation = connection->generation;
	strlcpy(statement->name, name, sizeof(statement->name));
	statement->sql = MemoryContextStrdup(CacheMemoryContext, sql);
	statement->types = (Oid *) MemoryContextAlloc(CacheMemoryContext, sizeof(Oid) * Max(nparams, 1));
	memcpy(statement->types, types, sizeof(Oid) * nparams);
	statement->nparams = nparams;
	return statement->name;
}

} // namespace

PGresult *
ExecuteAutocommit(Oid serverid, const char *sql, int nparams, const Oid *types, const char *const *values)
{
	OwnConnection *connection = GetOwnConnection(serverid, 0, true);
	if (connection == NULL)
		ereport(ERROR,
		        (errcode(ERRCODE_INTERNAL_ERROR), errmsg("fdwshard's connection to server %u is in use", serverid)));
	const char *name = nparams > 0 ? PreparedName(connection, sql, nparams, types) : NULL;

	elog(DEBUG2, "fdwshard: on server %u as its own transaction: %s", serverid, sql);
	connection->in_flight = true;
	int sent = name != NULL ? PQsendQueryPrepared(connection->conn, name, nparams, values, NULL, NULL, 0)
	                        : PQsendQueryParams(connection->conn, sql, nparams, types, values, NULL, NULL, 0);
	if (!sent)
		ReportRemoteError(NULL, connection->conn, sql);
	return WaitForOwnSuccess(connection, sql);
}

} // namespace fdwshard::remote
