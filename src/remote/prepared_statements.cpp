/*
 * The statements prepared on fdwshard's own connections (see remote/prepared_statements.h): one
 * table per connection, dropped with the connection, keyed by the hash of the parameter types
 * and the SQL text (the text itself is compared too: a collision must not run another statement).
 */
#include "fdwshard/remote/prepared_statements.h"

#include "fdwshard/core/hash.h"
#include "fdwshard/remote/connection.h"

namespace fdwshard::remote
{

namespace
{

struct PreparedStatement
{
	uint64 key; /* hash key: parameter types and SQL text */
	int number; /* named fdwshard_<number>; 0: seen once, not prepared (PrepareOn::kSecondUse) */
	char name[24];
	char *sql; /* in CacheMemoryContext, once prepared */
	Oid *types;
	int nparams;
};

constexpr int kMaxPreparedPerConnection = 1000;
constexpr long kMaxTrackedPerConnection = 3000; /* statements seen once included (their hash only) */
const Oid kNoTypes[1] = {InvalidOid};           /* types of a statement without parameters: never NULL below */

/*
 * statement's entry on connection, entered if new (and there is room): NULL when another
 * statement prepared there has the same hash, or there is no room.
 */
PreparedStatement *
Lookup(OwnConnection *connection, const char *sql, int nparams, const Oid *types, bool *found)
{
	if (connection->prepared == NULL)
	{
		HASHCTL ctl;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(PreparedStatement);
		ctl.hcxt = CacheMemoryContext;
		connection->prepared =
		    hash_create("fdwshard prepared statements", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	uint64 key = ((uint64) (uint32) core::HashBytes(types, sizeof(Oid) * nparams) << 32) |
	             (uint32) core::HashBytes(sql, strlen(sql));
	PreparedStatement *statement = (PreparedStatement *) hash_search(connection->prepared, &key, HASH_FIND, found);
	if (statement != NULL)
	{
		if (statement->number > 0 &&
		    (statement->nparams != nparams || memcmp(statement->types, types, sizeof(Oid) * nparams) != 0 ||
		     strcmp(statement->sql, sql) != 0))
			return NULL;
		return statement;
	}
	if (hash_get_num_entries(connection->prepared) >= kMaxTrackedPerConnection)
		return NULL;
	statement = (PreparedStatement *) hash_search(connection->prepared, &key, HASH_ENTER, found);
	statement->number = 0;
	statement->sql = NULL;
	statement->types = NULL;
	statement->nparams = 0;
	return statement;
}

/* statement numbered for its PREPARE on connection, its text kept; false when the connection holds its limit. */
bool
NumberStatement(OwnConnection *connection, PreparedStatement *statement, const char *sql, int nparams, const Oid *types)
{
	if (connection->prepared_count >= kMaxPreparedPerConnection)
		return false;
	statement->number = ++connection->prepared_count;
	snprintf(statement->name, sizeof(statement->name), "fdwshard_%d", statement->number);
	statement->sql = MemoryContextStrdup(CacheMemoryContext, sql);
	statement->types = (Oid *) MemoryContextAlloc(CacheMemoryContext, sizeof(Oid) * Max(nparams, 1));
	memcpy(statement->types, types, sizeof(Oid) * nparams);
	statement->nparams = nparams;
	return true;
}

const char *
Name(const PreparedStatement *statement)
{
	return statement->name;
}

} // namespace

const char *
PreparedName(OwnConnection *connection, const char *sql, int nparams, const Oid *types, PrepareOn prepare_on,
             bool *needs_prepare)
{
	bool found;
	*needs_prepare = false;
	if (types == NULL)
		types = kNoTypes;
	PreparedStatement *statement = Lookup(connection, sql, nparams, types, &found);
	if (statement == NULL || (prepare_on == PrepareOn::kSecondUse && !found))
		return NULL; /* no room, or a first use that stays unnamed */
	if (statement->number > 0)
		return Name(statement);
	if (!NumberStatement(connection, statement, sql, nparams, types))
		return NULL;
	*needs_prepare = true;
	return Name(statement);
}

void
ForgetPrepared(OwnConnection *connection)
{
	if (connection->prepared == NULL)
		return;
	HASH_SEQ_STATUS status;
	PreparedStatement *statement;
	hash_seq_init(&status, connection->prepared);
	while ((statement = (PreparedStatement *) hash_seq_search(&status)) != NULL)
		if (statement->number > 0)
		{
			pfree(statement->sql);
			pfree(statement->types);
		}
	hash_destroy(connection->prepared);
	connection->prepared = NULL;
	connection->prepared_count = 0;
}

} // namespace fdwshard::remote
