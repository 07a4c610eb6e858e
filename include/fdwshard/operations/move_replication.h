/* The logical replication of an online shard move: publication and slot on the source, subscription on the target. */
#pragma once

#include "fdwshard/catalog/metadata.h"
#include "fdwshard/pg.h"
#include "fdwshard/remote/node_session.h"

namespace fdwshard::operations
{

/*
 * One online move's replication. Its publication, slot and subscription share one name,
 * fdwshard_move_<shardid> (the group's smallest shard id), so the next move of the group finds
 * and drops what a failed one left. Every step commits on its node on its own (node sessions).
 */
struct MoveReplication
{
	char *name;
	const catalog::Node *source;
	const catalog::Node *target;
	remote::NodeSession *source_session;
	remote::NodeSession *target_session;
	List *tables;       /* qualified names of the group's shard tables: the same on both nodes */
	char *subid;        /* the subscription's OID on the target, once known (for its table sync slots) */
	const char *marker; /* schema.fdwshard_move_<shardid>: a table on both nodes, published too, see WaitForCatchUp */
	int markers;        /* rows written to it so far */
};

/* The replication of the group whose smallest shard id is group_shardid, between source and target; its marker table in
 * schema. */
MoveReplication *PrepareReplication(int64 group_shardid, const catalog::Node *source, const catalog::Node *target,
                                    List *tables, const char *schema);

/* Publication and slot on the source, then the subscription on the target (it copies the tables, then streams). */
void StartReplication(MoveReplication *replication);

/* Waits until every table is copied and in sync; returns the rows the target's tables hold then. */
uint64 WaitForInitialCopy(MoveReplication *replication);

/*
 * Waits until the target has applied (and flushed) every change the source committed before now.
 * The target must have the marker table (made with its shard tables). Returns the milliseconds it took.
 */
long WaitForCatchUp(MoveReplication *replication);

/* Waits until the transactions prepared on the source before now are committed or rolled back (two-phase commits of
 * writers that already let go of their locks). */
void WaitForPreparedOnSource(MoveReplication *replication);

/*
 * Drops the subscription (with its slots on the source), the publication and any slot left of
 * this name on the source. strict: errors are raised; otherwise each step is tried and warned about.
 */
void DropReplication(MoveReplication *replication, bool strict);

/* Whether the source or target has a publication, slot or subscription of this move's name. */
bool ReplicationLeftOver(MoveReplication *replication);

/* The conninfo of the target's subscription to source: fdwshard.node's host, port and dbname, the user mapping's user
 * and password. */
char *SourceConnInfo(const catalog::Node *source);

} // namespace fdwshard::operations
