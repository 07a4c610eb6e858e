/* The lock create_distributed_table and undistribute_table take on the table they replace. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/*
 * Checks that the current user owns relid, then locks it (AccessExclusiveLock, until commit).
 * Both functions replace the table by a new relation of the same name and drop the old one, so
 * a session that waited for the lock may find relid gone: it is then told what the other session
 * did, for distributing (create_distributed_table) or not (undistribute_table). Needs SPI.
 */
void LockTableToReplace(Oid relid, bool distributing);

} // namespace fdwshard
