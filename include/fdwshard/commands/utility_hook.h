/* The ProcessUtility hook: DDL on distributed tables reaches every shard on every node, or is refused. */
#pragma once

#include "fdwshard/commands/shard_ddl.h"

namespace fdwshard::commands
{

/* The arguments of one ProcessUtility call, handed to the per-statement handlers. */
struct UtilityCall
{
	PlannedStmt *pstmt;
	const char *query_string;
	bool read_only_tree;
	ProcessUtilityContext context;
	ParamListInfo params;
	QueryEnvironment *query_env;
	DestReceiver *dest;
	QueryCompletion *qc;
};

/* Installs the hook (from _PG_init). */
void InitUtilityHook(void);

/* The statement, copied first when the tree is read-only, so a handler may change it. */
Node *WritableStatement(UtilityCall *call);

/* Runs the (possibly changed) statement through the previous hook, with propagation bypassed. */
void CallPreviousUtility(UtilityCall *call);

/*
 * Per-statement handlers: each returns false when the statement is not about a distributed table
 * (the dispatcher then just calls the previous hook), true when it ran the statement itself:
 * preprocess (checks, refusals, what the shards need) → previous hook → postprocess (every shard).
 */
bool ProcessAlterTable(UtilityCall *call, AlterTableStmt *stmt);
bool ProcessRename(UtilityCall *call, RenameStmt *stmt);
bool ProcessAlterObjectSchema(UtilityCall *call, AlterObjectSchemaStmt *stmt);
bool ProcessIndex(UtilityCall *call, IndexStmt *stmt);
bool ProcessDrop(UtilityCall *call, DropStmt *stmt);
/* DROP EXTENSION fdwshard (commands/drop.cpp): refused while distributed tables exist, unless CASCADE. */
bool ProcessDropExtension(UtilityCall *call, DropStmt *stmt);
/* DROP TABLE: the shards of distributed tables dropped first, in chunks (drop.cpp). */
void DropShardsOfDroppedTables(DropStmt *stmt);
bool ProcessVacuum(UtilityCall *call, VacuumStmt *stmt);
bool ProcessGrant(UtilityCall *call, GrantStmt *stmt);

/* Refuses a statement fdwshard does not propagate to the shards of a distributed table. */
[[noreturn]] void RefuseUnsupported(const char *what, const char *table_name);

/* Shard keys (fdwshard.shard_key): PRIMARY KEY / UNIQUE / unique indexes / foreign keys, one per shard. */
void AddShardKeyConstraint(DistributedTable *table, Constraint *constraint);
void AddShardUniqueIndex(DistributedTable *table, IndexStmt *stmt);
void AddShardForeignKey(DistributedTable *table, Constraint *constraint);
/* Kind of the shard key name of the table ('p', 'u', 'i', 'f'), or '\0' when there is none. */
char ShardKeyKind(Oid relid, const char *name);
void DropShardKey(DistributedTable *table, const char *name, DropBehavior behavior);
void RenameShardKey(DistributedTable *table, const char *name, const char *new_name);
/* Forgets shard keys that no longer exist on the shards (after DROP COLUMN). */
void ForgetVanishedShardKeys(DistributedTable *table);

} // namespace fdwshard::commands
