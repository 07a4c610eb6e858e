/*
 * Node management: fdwshard_add_node, fdwshard_update_node, fdwshard_remove_node,
 * fdwshard_set_node_property, fdwshard_check_nodes.
 */
#include "fdwshard/catalog/metadata.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/autocommit.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/own_connection.h"

extern "C"
{
#include "funcapi.h"
}

namespace fdwshard
{

namespace
{

using namespace catalog;

/* Nodes are the cluster's topology: superusers only, even if EXECUTE was granted. */
void
RequireSuperuser(const char *action)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be superuser to %s", action),
		                errhint("Ask a superuser to manage the nodes.")));
}

/*
 * What a server is, whatever its address is spelled like: its cluster's system identifier and
 * the database; and whether it can prepare transactions (two-phase commit needs it).
 */
const char *const kIdentityQuery = "SELECT (SELECT system_identifier FROM pg_catalog.pg_control_system())::text, "
                                   "pg_catalog.current_database()::text, "
                                   "pg_catalog.current_setting('max_prepared_transactions')::int4::text";

/* Registering the coordinator as a worker would make it wait on its own locks through the loopback. */
[[noreturn]] void
RefuseCoordinator(const char *host, int32 port)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("cannot add the coordinator itself as a node"),
	                errdetail("%s:%d reaches this server and database, which is node 1.", host, port),
	                errhint("The coordinator is always node 1 and holds shards unless told otherwise; add only other "
	                        "servers (or other databases) as nodes.")));
	pg_unreachable();
}

int32 PeekNodeId(void);

/* Registers a worker: a postgres_fdw server, a user mapping, a catalog row, and a checked connection. */
int32
AddNode(const char *host, int32 port, const char *dbname, const char *user, const char *password)
{
	RequireSuperuser("add a node");
	if (port < 1 || port > 65535)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("port %d is out of range", port)));

	SPI_connect();
	/* Node changes one at a time: the id peeked below stays the next one until this transaction ends. */
	SpiRun("LOCK TABLE fdwshard.node IN SHARE ROW EXCLUSIVE MODE");
	/* One address, one node (whatever the database); the identity check below catches other spellings. */
	if (SpiRun("SELECT nodeid, is_local AND dbname = $3 FROM fdwshard.node WHERE host = $1 AND port = $2",
	           {TextArg(host), Int4Arg(port), TextArg(dbname)}) > 0)
	{
		if (SpiBool(0, 2))
			RefuseCoordinator(host, port);
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
		                errmsg("node %s:%d is already registered as node %d", host, port, SpiInt4(0, 1))));
	}

	int32 nodeid = PeekNodeId();
	char *server = psprintf("fdwshard_node_%d", nodeid);
	char portText[16];
	snprintf(portText, sizeof(portText), "%d", port);

	/* async_capable lets multi-shard scans run on all workers at once; batches speed up ingest. */
	SpiRun(psprintf("CREATE SERVER %s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %s, port %s, dbname %s, "
	                "async_capable 'true', batch_size '1000', fetch_size '1000')",
	                quote_identifier(server), quote_literal_cstr(host), quote_literal_cstr(portText),
	                quote_literal_cstr(dbname)));

	StringInfoData mapping;
	initStringInfo(&mapping);
	appendStringInfo(&mapping, "CREATE USER MAPPING FOR CURRENT_USER SERVER %s", quote_identifier(server));
	if (user != NULL || password != NULL)
	{
		appendStringInfoString(&mapping, " OPTIONS (");
		if (user != NULL)
			appendStringInfo(&mapping, "user %s", quote_literal_cstr(user));
		if (password != NULL)
			appendStringInfo(&mapping, "%spassword %s", user != NULL ? ", " : "", quote_literal_cstr(password));
		appendStringInfoChar(&mapping, ')');
	}
	SpiRun(mapping.data);

	SpiRun("INSERT INTO fdwshard.node (nodeid, host, port, dbname, is_local, should_have_shards, server_name) "
	       "VALUES ($1, $2, $3, $4, false, true, $5)",
	       {Int4Arg(nodeid), TextArg(host), Int4Arg(port), TextArg(dbname), TextArg(server)});
	Oid serverid = get_foreign_server_oid(server, false);
	SPI_finish();

	/*
	 * A node we cannot reach must not be registered: the error rolls all of the above back. The
	 * identity is read on a connection of its own (a separate backend even when it is the
	 * coordinator), so this cannot wait on our own locks.
	 */
	char *system_identifier = NULL;
	char *remote_dbname = NULL;
	char *max_prepared_transactions = NULL;
	try
	{
		pg::Call(
		    [&]
		    {
			    PGresult *result = remote::ExecuteParams(serverid, kIdentityQuery, 0, NULL, NULL, false);
			    system_identifier = pstrdup(PQgetvalue(result, 0, 0));
			    remote_dbname = pstrdup(PQgetvalue(result, 0, 1));
			    max_prepared_transactions = pstrdup(PQgetvalue(result, 0, 2));
			    PQclear(result);
		    });
	}
	catch (const pg::PgError &error)
	{
		error.edata()->hint = pstrdup("Check that the worker runs and accepts connections from the coordinator "
		                              "with the user mapping's credentials; nothing was registered.");
		throw;
	}

	SPI_connect();
	SpiRun(kIdentityQuery);
	if (strcmp(SpiText(0, 1), system_identifier) == 0 && strcmp(SpiText(0, 2), remote_dbname) == 0)
		RefuseCoordinator(host, port);
	if (SpiRun("SELECT nodeid, host, port FROM fdwshard.node "
	           "WHERE system_identifier = $1::bigint AND dbname = $2 AND nodeid <> $3",
	           {TextArg(system_identifier), TextArg(remote_dbname), Int4Arg(nodeid)}) > 0)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
		                errmsg("node %s:%d is already registered as node %d", host, port, SpiInt4(0, 1)),
		                errdetail("Node %d was added as %s:%d; both addresses reach database \"%s\" of the same "
		                          "server.",
		                          SpiInt4(0, 1), SpiText(0, 2), SpiInt4(0, 3), remote_dbname),
		                errhint("A server's database can be registered only once; to change its address, remove the "
		                        "node (it must hold no shards) and add it again.")));
	/* The error rolls back the server, user mapping and catalog row made above. */
	if (atoi(max_prepared_transactions) <= 0)
		ereport(ERROR,
		        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		         errmsg("node %s:%d does not allow prepared transactions", host, port),
		         errdetail("Its max_prepared_transactions is %s; two-phase commit of transactions that write on "
		                   "several nodes needs prepared transactions on every worker. Nothing was registered.",
		                   max_prepared_transactions),
		         errhint("Set max_prepared_transactions on the worker (at least its max_connections) and restart "
		                 "it, then add the node again.")));
	SpiRun("UPDATE fdwshard.node SET system_identifier = $2::bigint WHERE nodeid = $1",
	       {Int4Arg(nodeid), TextArg(system_identifier)});
	/* Only now is the id used (a sequence does not roll back). */
	SpiRun("SELECT pg_catalog.setval('fdwshard.node_nodeid_seq', GREATEST($1, last_value)) "
	       "FROM fdwshard.node_nodeid_seq",
	       {Int8Arg(nodeid)});
	SPI_finish();
	return nodeid;
}

/*
 * fdwshard_update_node: the worker's server gets the new address, then a connection to it must
 * reach the same server and database as before (its system identifier and database name), or
 * the error rolls the change back.
 */
void
UpdateNode(int32 nodeid, const char *host, int32 port)
{
	RequireSuperuser("change a node");
	if (port < 1 || port > 65535)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("port %d is out of range", port)));

	MemoryContext context = CurrentMemoryContext;
	SPI_connect();
	SpiRun("LOCK TABLE fdwshard.node IN SHARE ROW EXCLUSIVE MODE");
	Node *node = ReadNode(nodeid, false);
	if (node->is_local)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("node %d is the coordinator, which fdwshard does not connect to", nodeid),
		                errhint("Only a worker's address can be changed.")));
	if (SpiRun("SELECT nodeid FROM fdwshard.node WHERE host = $1 AND port = $2 AND nodeid <> $3",
	           {TextArg(host), Int4Arg(port), Int4Arg(nodeid)}) > 0)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
		                errmsg("node %s:%d is already registered as node %d", host, port, SpiInt4(0, 1))));
	SpiRun("SELECT system_identifier::text, dbname FROM fdwshard.node WHERE nodeid = $1", {Int4Arg(nodeid)});
	char *system_identifier = SpiText(0, 1); /* NULL for a worker registered before 0.2 */
	char *dbname = SpiText(0, 2);

	ForeignServer *server = GetForeignServer(node->serverid);
	bool has_host = false;
	bool has_port = false;
	ListCell *cell;
	foreach (cell, server->options)
	{
		const char *option = ((DefElem *) lfirst(cell))->defname;
		has_host |= strcmp(option, "host") == 0;
		has_port |= strcmp(option, "port") == 0;
	}
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", port);
	SpiRun(psprintf("ALTER SERVER %s OPTIONS (%s host %s, %s port %s)", quote_identifier(server->servername),
	                has_host ? "SET" : "ADD", quote_literal_cstr(host), has_port ? "SET" : "ADD",
	                quote_literal_cstr(port_text)));
	SpiRun("UPDATE fdwshard.node SET host = $2, port = $3 WHERE nodeid = $1",
	       {Int4Arg(nodeid), TextArg(host), Int4Arg(port)});
	Oid serverid = node->serverid;
	MemoryContext spi = MemoryContextSwitchTo(context);
	system_identifier = system_identifier != NULL ? pstrdup(system_identifier) : NULL;
	dbname = pstrdup(dbname);
	MemoryContextSwitchTo(spi);
	SPI_finish();

	/*
	 * fdwshard's own connection: it reconnects once the server changed, where postgres_fdw's keeps
	 * the old address while this transaction uses it.
	 */
	char *remote_system_identifier = NULL;
	char *remote_dbname = NULL;
	try
	{
		pg::Call(
		    [&]
		    {
			    PGresult *result = remote::ExecuteAutocommit(serverid, kIdentityQuery, 0, NULL, NULL);
			    remote_system_identifier = pstrdup(PQgetvalue(result, 0, 0));
			    remote_dbname = pstrdup(PQgetvalue(result, 0, 1));
			    PQclear(result);
		    });
	}
	catch (const pg::PgError &error)
	{
		error.edata()->hint = pstrdup("Check that the worker runs at the new address and accepts connections from "
		                              "the coordinator; nothing was changed.");
		throw;
	}
	if ((system_identifier != NULL && strcmp(system_identifier, remote_system_identifier) != 0) ||
	    strcmp(dbname, remote_dbname) != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s:%d is not node %d", host, port, nodeid),
		                errdetail("It reaches database \"%s\" of the server with system identifier %s; node %d is "
		                          "database \"%s\" of the server with system identifier %s.",
		                          remote_dbname, remote_system_identifier, nodeid, dbname,
		                          system_identifier != NULL ? system_identifier : "(unknown)"),
		                errhint("A new address must reach the same server and database; nothing was changed. To "
		                        "replace a worker by another server, add that one and move the shards to it.")));
	if (system_identifier == NULL)
	{
		SPI_connect();
		SpiRun("UPDATE fdwshard.node SET system_identifier = $2::bigint WHERE nodeid = $1",
		       {Int4Arg(nodeid), TextArg(remote_system_identifier)});
		SPI_finish();
	}
}

/*
 * The id the next node gets, without taking it: a refused add must use none. An id whose server
 * name an earlier install left behind (fdwshard_node_<id>) is skipped.
 */
int32
PeekNodeId(void)
{
	for (;;)
	{
		SpiRun("SELECT (CASE WHEN is_called THEN last_value + 1 ELSE last_value END)::int4 "
		       "FROM fdwshard.node_nodeid_seq");
		int32 nodeid = SpiInt4(0, 1);
		if (!OidIsValid(get_foreign_server_oid(psprintf("fdwshard_node_%d", nodeid), true)) &&
		    SpiRun("SELECT 1 FROM fdwshard.node WHERE nodeid = $1", {Int4Arg(nodeid)}) == 0)
			return nodeid;
		SpiRun("SELECT nextval('fdwshard.node_nodeid_seq')");
	}
}

void
RemoveNode(int32 nodeid)
{
	RequireSuperuser("remove a node");
	SPI_connect();
	Node *node = ReadNode(nodeid, false);

	if (node->is_local)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("node %d is the coordinator and cannot be removed", nodeid),
		                errhint("To keep new shards off it: SELECT fdwshard_set_node_property(%d, "
		                        "'should_have_shards', false);",
		                        nodeid)));

	SpiRun("SELECT count(*) FROM fdwshard.placement WHERE nodeid = $1", {Int4Arg(nodeid)});
	int64 shards = SpiInt8(0, 1);
	if (shards > 0)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
		                errmsg("node %d still holds " INT64_FORMAT " shard(s)", nodeid, shards),
		                errhint("Drop or move its distributed tables' shards first.")));

	char *server = pstrdup(GetForeignServer(node->serverid)->servername);
	SpiRun("DELETE FROM fdwshard.node WHERE nodeid = $1", {Int4Arg(nodeid)});
	SpiRun(psprintf("DROP SERVER %s CASCADE", quote_identifier(server)));
	SPI_finish();
}

void
SetNodeProperty(int32 nodeid, const char *property, bool value)
{
	RequireSuperuser("change a node");
	if (strcmp(property, "should_have_shards") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown node property \"%s\"", property),
		                errhint("The supported property is should_have_shards.")));
	SPI_connect();
	ReadNode(nodeid, false);
	SpiRun("UPDATE fdwshard.node SET should_have_shards = $2 WHERE nodeid = $1", {Int4Arg(nodeid), BoolArg(value)});
	SPI_finish();
}

/* fdwshard_check_nodes: every node tried now, one row each (nodeid, ok, error). */
void
CheckNodes(FunctionCallInfo fcinfo)
{
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	MemoryContext context = CurrentMemoryContext;
	SPI_connect();
	uint64 count = SpiRun("SELECT nodeid, is_local, server_name::text FROM fdwshard.node ORDER BY nodeid");
	MemoryContext spi = MemoryContextSwitchTo(context);
	int32 *nodeids = (int32 *) palloc(sizeof(int32) * (count + 1));
	Oid *servers = (Oid *) palloc(sizeof(Oid) * (count + 1));
	for (uint64 row = 0; row < count; row++)
	{
		nodeids[row] = SpiInt4(row, 1);
		servers[row] = SpiBool(row, 2) ? InvalidOid : get_foreign_server_oid(SpiText(row, 3), false);
	}
	MemoryContextSwitchTo(spi);
	SPI_finish();

	for (uint64 row = 0; row < count; row++)
	{
		char *error = OidIsValid(servers[row]) ? remote::ProbeNode(servers[row]) : NULL;
		Datum values[3] = {Int32GetDatum(nodeids[row]), BoolGetDatum(error == NULL),
		                   error != NULL ? CStringGetTextDatum(error) : (Datum) 0};
		bool nulls[3] = {false, false, error == NULL};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

char *
OptionalText(FunctionCallInfo fcinfo, int argno)

{
	return PG_NARGS() > argno && !PG_ARGISNULL(argno) ? text_to_cstring(PG_GETARG_TEXT_PP(argno)) : NULL;
}

} // namespace

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_add_node);
	PG_FUNCTION_INFO_V1(fdwshard_remove_node);
	PG_FUNCTION_INFO_V1(fdwshard_set_node_property);
	PG_FUNCTION_INFO_V1(fdwshard_update_node);
	PG_FUNCTION_INFO_V1(fdwshard_check_nodes);

	/* fdwshard_update_node(nodeid, host, port) (STRICT): a worker's new address. */
	Datum fdwshard_update_node(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    fdwshard::UpdateNode(PG_GETARG_INT32(0), text_to_cstring(PG_GETARG_TEXT_PP(1)), PG_GETARG_INT32(2));
			    PG_RETURN_VOID();
		    });
	}

	/* fdwshard_check_nodes() RETURNS TABLE (nodeid int, ok bool, error text). */
	Datum fdwshard_check_nodes(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    fdwshard::CheckNodes(fcinfo);
			    return (Datum) 0;
		    });
	}

	/* fdwshard_add_node(host, port, dbname [, user, password]) RETURNS int: the new node's id. */
	Datum fdwshard_add_node(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
				    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				                    errmsg("host, port and dbname must not be NULL")));
			    PG_RETURN_INT32(fdwshard::AddNode(
			        text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_INT32(1), text_to_cstring(PG_GETARG_TEXT_PP(2)),
			        fdwshard::OptionalText(fcinfo, 3), fdwshard::OptionalText(fcinfo, 4)));
		    });
	}

	/* fdwshard_remove_node(nodeid) (STRICT): removes a worker that holds no shards. */
	Datum fdwshard_remove_node(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    fdwshard::RemoveNode(PG_GETARG_INT32(0));
			    PG_RETURN_VOID();
		    });
	}

	/* fdwshard_set_node_property(nodeid, property, value) (STRICT). */
	Datum fdwshard_set_node_property(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    fdwshard::SetNodeProperty(PG_GETARG_INT32(0), text_to_cstring(PG_GETARG_TEXT_PP(1)), PG_GETARG_BOOL(2));
			    PG_RETURN_VOID();
		    });
	}
}
