/* Each worker's health as this coordinator last saw it (shared memory), for the fdwshard.nodes view. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/*
 * Records that a session reached serverid's worker just now (a connection opened or handed out,
 * a result read). No lock once this backend knows the worker's entry: cheap enough for every use.
 */
void RecordNodeOk(Oid serverid);

/* Records a failure to reach serverid's worker; the first line of message is kept. */
void RecordNodeFailure(Oid serverid, const char *message);

/* The same for the worker at target ("host:port", as WorkerTarget spells it): no catalog access. */
void RecordNodeFailureAt(const char *target, const char *message);

/*
 * While an error is being raised or caught (an error context callback, PG_CATCH): records it as
 * a failure of serverid's worker if it is a connection failure (class 08), keeping the first line
 * of its detail (libpq's message) or else of its message.
 */
void RecordNodeError(Oid serverid);

/* Shared memory and the cache invalidation of worker entries (from _PG_init). */
void InitNodeHealth(void);

} // namespace fdwshard::remote
