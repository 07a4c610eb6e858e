/* fdwshard's structs in shared memory: one pair of shmem hooks reserves and sets up them all. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/* Sets up a new struct (zeroed) once per server start; lock is the struct's own LWLock. */
using SharedStructInit = void (*)(void *state, LWLock *lock);

/*
 * From _PG_init: reserves size bytes of shared memory named name, with a named LWLock tranche of
 * one lock; once the server has set it up, *state points to it (init ran on it the first time).
 */
void RequestSharedStruct(const char *name, Size size, SharedStructInit init, void **state);

} // namespace fdwshard
