/* fdwshard.run_command_on_node: run SQL on a worker in this transaction (tests and operators). */
#include "fdwshard/catalog/metadata.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/connection.h"

extern "C"
{
	PG_FUNCTION_INFO_V1(run_command_on_node);

	/* run_command_on_node(nodeid int, command text) RETURNS text: first value returned, or the command tag. */
	Datum run_command_on_node(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    /* Arbitrary SQL as the user mapping's worker role: superusers only, even if EXECUTE was granted. */
			    if (!superuser())
				    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				                    errmsg("must be superuser to run a command on a node"),
				                    errhint("Ask a superuser, or change distributed tables through the coordinator.")));
			    int32 nodeid = PG_GETARG_INT32(0);
			    char *command = text_to_cstring(PG_GETARG_TEXT_PP(1));

			    /* Nothing to run is the caller's mistake, not a connection failure (libpq: "empty query"). */
			    if (strspn(command, " \t\n\r\f\v") == strlen(command))
				    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("command must not be empty"),
				                    errhint("Pass the SQL to run on the node.")));

			    SPI_connect();
			    fdwshard::catalog::Node *node = fdwshard::catalog::ReadNode(nodeid, false);
			    bool is_local = node->is_local;
			    Oid serverid = node->serverid;
			    SPI_finish();
			    if (is_local)
				    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				                    errmsg("node %d is the coordinator; run the command directly", nodeid)));

			    char *answer = fdwshard::remote::QueryOnServer(serverid, command);
			    if (answer == NULL)
				    PG_RETURN_NULL();
			    PG_RETURN_TEXT_P(cstring_to_text(answer));
		    });
	}
}
