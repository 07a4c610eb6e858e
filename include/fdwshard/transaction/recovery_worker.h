/* The background workers that run recovery passes (transaction/recovery.h) in every fdwshard database. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::transaction
{

/* fdwshard.recovery_interval in milliseconds (0: no background recovery at all). */
extern int recovery_interval_ms;

/*
 * Registers fdwshard.recovery_interval and the static "fdwshard recovery launcher" worker. Call
 * only from _PG_init while shared_preload_libraries are loaded (static workers exist only then).
 */
void InitRecoveryWorker(void);

} // namespace fdwshard::transaction
