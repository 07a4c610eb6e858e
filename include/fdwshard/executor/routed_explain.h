/* EXPLAIN of a statement routed to one shard names the shard and the node it runs on. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::executor
{

/*
 * For EXPLAIN only: stmt, when the router planned it against shard relations directly, under a
 * pass-through "FdwShard Router" node that names the shards and their nodes; otherwise stmt.
 */
PlannedStmt *WrapRoutedPlanForExplain(PlannedStmt *stmt);

/* Registers the node's methods. */
void InitRoutedExplain(void);

} // namespace fdwshard::executor
