/* fdwshard.idle_connection_timeout: a session's connections to workers, unused that long, closed outside a transaction.
 */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/* fdwshard.idle_connection_timeout in milliseconds; 0 keeps connections for the life of the session. */
extern int idle_connection_timeout_ms;

/* The GUC and the transaction callback that closes unused connections and arms the timer (from _PG_init). */
void InitIdleConnections(void);

} // namespace fdwshard::remote
