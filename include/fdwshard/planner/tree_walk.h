/* Walking query trees: casts for PostgreSQL 15's walker/mutator types, and range table collection. */
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

/*
 * Copies of the relation entries (not ON CONFLICT's EXCLUDED) of every query level below query,
 * and of query itself unless nested_only: what a hand-built plan's range table must hold so its
 * relations are locked and checked.
 */
List *RelationRtes(Query *query, bool nested_only);

} // namespace fdwshard
