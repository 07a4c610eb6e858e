/* What the current user needs to reach a worker: a user mapping, and USAGE to create foreign shards. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/*
 * Refuses, with the CREATE USER MAPPING statement to run, when the current user has no user
 * mapping (own or PUBLIC) for serverid: fdwshard reaches a worker's shards as the current user.
 */
void RequireUserMapping(Oid serverid);

/* Refuses, with the GRANT to run, when the current user may not create foreign tables on serverid. */
void RequireServerUsage(Oid serverid);

} // namespace fdwshard::remote
