/* The planner hook: shard pruning for distribution column equality. */
#pragma once

namespace fdwshard
{

/* Installs the planner hook, chained after any previous one. */
void InitPlanner(void);

} // namespace fdwshard
