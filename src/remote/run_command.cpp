/*
 * fdwshard.run_command_on_node and fdwshard.run_command_on_all_nodes: SQL on the nodes, in this
 * transaction, under the caller's search_path (operators and tests).
 */
#include "fdwshard/catalog/metadata.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"

extern "C"
{
#include "catalog/namespace.h"
#include "funcapi.h"
#include "tcop/cmdtag.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/varlena.h"
}

namespace fdwshard::remote
{

namespace
{

/* Arbitrary SQL as the user mapping's worker role: superusers only, even if EXECUTE was granted. */
void
RequireSuperuserToRun(void)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be superuser to run a command on a node"),
		                errhint("Ask a superuser, or change distributed tables through the coordinator.")));
}

void RefuseTransactionControl(const char *command);

/* Nothing to run is the caller's mistake, not a connection failure (libpq: "empty query"). */
void
RequireCommand(const char *command)
{
	if (strspn(command, " \t\n\r\f\v") == strlen(command))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("command must not be empty"),
		                errhint("Pass the SQL to run on the node.")));
	RefuseTransactionControl(command);
}

/*
 * Transaction control (BEGIN, COMMIT, ROLLBACK, PREPARE TRANSACTION, ...) would end the remote
 * transaction postgres_fdw keeps on the worker, or the caller's own: refused before anything
 * runs. A command this server cannot parse is left to the nodes to refuse.
 */
void
RefuseTransactionControl(const char *command)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool found = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		ListCell *cell;
		foreach (cell, pg_parse_query(command))
			if (IsA(((RawStmt *) lfirst(cell))->stmt, TransactionStmt))
				found = true;
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);
	CurrentResourceOwner = owner;
	if (found)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
		                errmsg("a command run on the nodes cannot control transactions"),
		                errhint("It runs inside the caller's transaction: commit or roll back that one.")));
}

/* The caller's search_path, each schema quoted for the worker ("$user" included). */
const char *
CallerSearchPath(void)
{
	char *raw = pstrdup(namespace_search_path);
	List *elements = NIL;
	if (!SplitIdentifierString(raw, ',', &elements))
		return namespace_search_path; /* cannot happen: the setting was checked when set */
	StringInfoData path;
	initStringInfo(&path);
	ListCell *cell;
	foreach (cell, elements)
		appendStringInfo(&path, "%s%s", path.len > 0 ? ", " : "", quote_identifier((const char *) lfirst(cell)));
	return path.data;
}

/*
 * Runs command on the worker under the caller's search_path, then puts back postgres_fdw's
 * (pg_catalog), which every statement fdwshard deparses relies on. If command fails, the remote
 * transaction or savepoint it ran in is rolled back, and the setting with it.
 */
char *
RunOnWorker(Oid serverid, const char *command)
{
	const char *path = CallerSearchPath();
	Oid types[1] = {TEXTOID};
	const char *values[1] = {path};
	PQclear(ExecuteParams(serverid, "SELECT pg_catalog.set_config('search_path', $1, false)", 1, types, values, false));
	char *answer = QueryOnServer(serverid, command);
	PQclear(ExecuteParams(serverid, "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)", 0, NULL, NULL,
	                      false));
	return answer;
}

/* Runs command on the coordinator; the answer as a worker gives it: the first value, or the command tag. */
char *
RunLocally(const char *command)
{
	MemoryContext context = CurrentMemoryContext;
	List *statements = pg_parse_query(command);
	if (statements == NIL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("command contains no statement")));
	CommandTag tag = CreateCommandTag(((RawStmt *) llast(statements))->stmt);

	SPI_connect();
	int result = SPI_execute(command, false, 0);
	/* SPI refuses some statements without raising an error (COMMIT, say: SPI_ERROR_TRANSACTION). */
	if (result < 0)
		ereport(ERROR, (errcode(result == SPI_ERROR_TRANSACTION ? ERRCODE_INVALID_TRANSACTION_TERMINATION
		                                                        : ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot run %s on the coordinator here", GetCommandTagName(tag)),
		                errdetail("SPI_execute: %s.", SPI_result_code_string(result))));
	char *answer;
	if (SPI_tuptable != NULL)
	{
		char *value = SPI_processed > 0 && SPI_tuptable->tupdesc->natts > 0
		                  ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)
		                  : NULL;
		answer = value != NULL ? MemoryContextStrdup(context, value) : NULL;
	}
	else if (command_tag_display_rowcount(tag))
		answer =
		    MemoryContextStrdup(context, psprintf(tag == CMDTAG_INSERT ? "%s 0 " UINT64_FORMAT : "%s " UINT64_FORMAT,
		                                          GetCommandTagName(tag), SPI_processed));
	else
		answer = MemoryContextStrdup(context, GetCommandTagName(tag));
	SPI_finish();
	return answer;
}

/* run_command_on_all_nodes: one row per node, each command in a subtransaction of its own. */
void
RunOnAllNodes(FunctionCallInfo fcinfo, const char *command)
{
	InitMaterializedSRF(fcinfo, 0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	MemoryContext context = CurrentMemoryContext;
	SPI_connect();
	uint64 count = catalog::SpiRun("SELECT nodeid, is_local, server_name::text FROM fdwshard.node ORDER BY nodeid");
	MemoryContext spi = MemoryContextSwitchTo(context);
	int32 *nodeids = (int32 *) palloc(sizeof(int32) * (count + 1));
	Oid *servers = (Oid *) palloc(sizeof(Oid) * (count + 1));
	for (uint64 row = 0; row < count; row++)
	{
		nodeids[row] = catalog::SpiInt4(row, 1);
		servers[row] = catalog::SpiBool(row, 2) ? InvalidOid : get_foreign_server_oid(catalog::SpiText(row, 3), false);
	}
	MemoryContextSwitchTo(spi);
	SPI_finish();

	for (uint64 row = 0; row < count; row++)
	{
		ResourceOwner owner = CurrentResourceOwner;
		char *volatile answer = NULL;
		volatile bool success = true;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(context);
		PG_TRY();
		{
			answer = OidIsValid(servers[row]) ? RunOnWorker(servers[row], command) : RunLocally(command);
			ReleaseCurrentSubTransaction();
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(context);
			ErrorData *edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			success = false;
			answer = edata->message;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;

		Datum values[3] = {Int32GetDatum(nodeids[row]), BoolGetDatum(success),
		                   answer != NULL ? CStringGetTextDatum(answer) : (Datum) 0};
		bool nulls[3] = {false, false, answer == NULL};
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

} // namespace

} // namespace fdwshard::remote

extern "C"
{
	PG_FUNCTION_INFO_V1(run_command_on_node);
	PG_FUNCTION_INFO_V1(run_command_on_all_nodes);

	/* run_command_on_node(nodeid int, command text) RETURNS text: first value returned, or the command tag. */
	Datum run_command_on_node(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    fdwshard::remote::RequireSuperuserToRun();
			    int32 nodeid = PG_GETARG_INT32(0);
			    char *command = text_to_cstring(PG_GETARG_TEXT_PP(1));
			    fdwshard::remote::RequireCommand(command);

			    SPI_connect();
			    fdwshard::catalog::Node *node = fdwshard::catalog::ReadNode(nodeid, false);
			    bool is_local = node->is_local;
			    Oid serverid = node->serverid;
			    SPI_finish();
			    if (is_local)
				    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				                    errmsg("node %d is the coordinator; run the command directly", nodeid)));

			    char *answer = fdwshard::remote::RunOnWorker(serverid, command);
			    if (answer == NULL)
				    PG_RETURN_NULL();
			    PG_RETURN_TEXT_P(cstring_to_text(answer));
		    });
	}

	/* run_command_on_all_nodes(command text) RETURNS TABLE (nodeid int, success bool, result text). */
	Datum run_command_on_all_nodes(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    fdwshard::remote::RequireSuperuserToRun();
			    char *command = text_to_cstring(PG_GETARG_TEXT_PP(0));
			    fdwshard::remote::RequireCommand(command);
			    fdwshard::remote::RunOnAllNodes(fcinfo, command);
			    return (Datum) 0;
		    });
	}
}
