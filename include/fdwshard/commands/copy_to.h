/* COPY TO of a distributed table: every row, through a query (PostgreSQL refuses partitioned tables). */
#pragma once

#include "fdwshard/commands/utility_hook.h"

namespace fdwshard::commands
{

/*
 * When call is COPY <distributed table> [(columns)] TO ..., runs it as COPY (SELECT columns FROM
 * table) TO ..., which reads every shard with the usual permission checks and row security, and
 * returns true; false for any other COPY.
 */
bool CopyFromDistributedTable(UtilityCall *call);

} // namespace fdwshard::commands
