/* Remote commands on worker nodes through postgres_fdw's own connection cache and transactions. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/* Runs a command on the server in the local transaction; a remote error becomes a local ERROR. */
void ExecuteOnServer(Oid serverid, const char *sql);

/* Runs sql on the server and returns the first column of the first row, or the command tag. */
char *QueryOnServer(Oid serverid, const char *sql);

} // namespace fdwshard::remote
