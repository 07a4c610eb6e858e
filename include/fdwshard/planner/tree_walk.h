/* Casts for PostgreSQL 15's tree walkers and mutators, declared as bool (*)() and Node *(*)(). */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

/* The void (*)() step keeps -Wcast-function-type quiet. */
inline bool (*WalkerFn(bool (*walker)(Node *, void *)))()
{
	return reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walker));
}

inline Node *(*MutatorFn(Node *(*mutator)(Node *, void *) ))()
{
	return reinterpret_cast<Node *(*) ()>(reinterpret_cast<void (*)()>(mutator));
}

} // namespace fdwshard
