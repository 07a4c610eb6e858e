/* Views over a table that is being rebuilt under the same name: saved, dropped, created again. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/*
 * Saves every view that depends on relid, directly or through other views (definition, options,
 * owner, grants, comment), and drops them, deepest first. Materialized views are refused.
 * Needs an SPI connection; returns a list to hand to RestoreDependentViews.
 */
List *SaveAndDropDependentViews(Oid relid, const char *table_name);

/* Creates the saved views again, in dependency order, over the rebuilt table. Needs SPI. */
void RestoreDependentViews(List *views);

} // namespace fdwshard
