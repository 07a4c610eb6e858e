/*
 * The statements pg_dump writes for the coordinator's half of a distributed table, accepted while
 * a dump is restored: they rebuild exactly what fdwshard made (the shard keys and indexes of local
 * shards, the partitioned indexes, fdwshard's trigger), so nothing reaches the workers, whose
 * shards were never dumped. Everything else about shards stays refused.
 */
#include "fdwshard/commands/restore.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::commands
{

namespace
{

/* relid's index among the shards of its distributed table (*table), or -1 when relid is no shard. */
int
ShardIndexOf(Oid relid, Oid *table)
{
	*table = ShardOwner(relid);
	const catalog::CachedTable *cached = OidIsValid(*table) ? catalog::LookupDistributedTable(*table) : NULL;
	for (int i = 0; cached != NULL && i < cached->shard_count; i++)
		if (cached->shards[i].relid == relid)
			return i;
	return -1;
}

/* The local shard relid is, with its distributed table; false for anything else. */
bool
LocalShard(Oid relid, Oid *table, const catalog::CachedShard **shard)
{
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		return false;
	int index = ShardIndexOf(relid, table);
	if (index < 0)
		return false;
	*shard = &catalog::LookupDistributedTable(*table)->shards[index];
	return true;
}

/*
 * The shard key of table whose per-shard name on shardid is name: its kind ('p', 'u', 'i', 'f') and
 * for a foreign key the table it references; '\0' when no key is named so.
 */
char
ShardKeyNamed(Oid table, int64 shardid, const char *name, Oid *referenced)
{
	MemoryContext caller = CurrentMemoryContext;
	char kind = '\0';

	*referenced = InvalidOid;
	SPI_connect();
	uint64 count = catalog::SpiRun("SELECT name::text, kind::text, referenced::oid FROM fdwshard.shard_key "
	                               "WHERE logicalrelid = $1",
	                               {catalog::OidArg(table)});
	for (uint64 row = 0; row < count && kind == '\0'; row++)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);
		bool matches = strcmp(remote::NameWithSuffix(catalog::SpiText(row, 1), shardid), name) == 0;
		MemoryContextSwitchTo(spi);
		if (!matches)
			continue;
		kind = catalog::SpiText(row, 2)[0];
		bool is_null;
		Datum value = catalog::SpiValue(row, 3, &is_null);
		*referenced = is_null ? InvalidOid : DatumGetObjectId(value);
	}
	SPI_finish();
	return kind;
}

/* A foreign key between shards restored as it was made: onto the referenced table's shard of the same index. */
bool
ReferencesCoLocatedShard(Constraint *constraint, Oid referenced, Oid table, Oid shard_relid)
{
	Oid pk_table;
	Oid shard_table;
	int pk_index = ShardIndexOf(RangeVarGetRelid(constraint->pktable, NoLock, true), &pk_table);
	return pk_index >= 0 && pk_table == referenced && pk_index == ShardIndexOf(shard_relid, &shard_table);
}

/* True when the constraint rebuilds the shard key the catalog names for this shard. */
bool
RebuildsShardKey(Constraint *constraint, Oid table, Oid shard_relid, int64 shardid)
{
	if (constraint->conname == NULL)
		return false;
	Oid referenced;
	switch (ShardKeyNamed(table, shardid, constraint->conname, &referenced))
	{
		case 'p':
			return constraint->contype == CONSTR_PRIMARY;
		case 'u':
			return constraint->contype == CONSTR_UNIQUE;
		case 'f':
			return constraint->contype == CONSTR_FOREIGN &&
			       ReferencesCoLocatedShard(constraint, referenced, table, shard_relid);
		default:
			return false;
	}
}

/*
 * PostgreSQL counts a partitioned index valid once every partition has its index attached, and a
 * foreign partition never has one: the index pg_dump rebuilt ON ONLY is valid once every local
 * shard's index is attached, as the index CREATE INDEX made was (it skips foreign partitions).
 */
void
ValidateIfComplete(Oid parent_index, Oid table)
{
	HeapTuple tuple = SearchSysCacheCopy1(INDEXRELID, ObjectIdGetDatum(parent_index));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for index %u", parent_index);
	Form_pg_index form = (Form_pg_index) GETSTRUCT(tuple);
	if (form->indisvalid)
		return;

	int local_partitions = 0;
	const catalog::CachedTable *cached = catalog::LookupDistributedTable(table);
	for (int i = 0; i < cached->shard_count; i++)
		if (get_rel_relkind(cached->shards[i].relid) != RELKIND_FOREIGN_TABLE)
			local_partitions++;
	if (list_length(find_inheritance_children(parent_index, ShareLock)) != local_partitions)
		return;

	Relation pg_index = table_open(IndexRelationId, RowExclusiveLock);
	form->indisvalid = true;
	CatalogTupleUpdate(pg_index, &tuple->t_self, tuple);
	table_close(pg_index, RowExclusiveLock);
	CacheInvalidateRelcacheByRelid(table);
	CommandCounterIncrement();
}

} // namespace

bool
Restoring(void)
{
	return !check_function_bodies;
}

bool
ProcessRestoredCatalogCopy(UtilityCall *call, CopyStmt *stmt)
{
	if (!Restoring() || !stmt->is_from || stmt->relation == NULL)
		return false;
	Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) || get_rel_namespace(relid) != get_namespace_oid("fdwshard", true))
		return false;

	/*
	 * pg_dump orders the catalog tables' data by their foreign keys, but pg_restore -j loads them
	 * at once, each committed alone: they load as with --disable-triggers (a dump is consistent),
	 * and the metadata caches, whose trigger that skips too, are told here.
	 */
	int nest_level = NewGUCNestLevel();
	(void) set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
	                         false);
	CallPreviousUtility(call);
	AtEOXact_GUC(true, nest_level);
	CacheInvalidateRelcacheByRelid(relid);
	return true;
}

bool
ProcessRestoredShardKey(UtilityCall *call, AlterTableStmt *stmt)
{
	Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	Oid table;
	const catalog::CachedShard *shard;
	if (!LocalShard(relid, &table, &shard))
		return false;
	int64 shardid = shard->shardid;

	ListCell *cell;
	foreach (cell, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(cell);
		if (cmd->subtype != AT_AddConstraint ||
		    !(Restoring() || RebuildsShardKey((Constraint *) cmd->def, table, relid, shardid)))
			return false;
	}
	RequireTableOwner(table);
	CallPreviousUtility(call);
	return true;
}

bool
ProcessRestoredIndex(UtilityCall *call, IndexStmt *stmt)
{
	Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return false;

	Oid table;
	const catalog::CachedShard *shard;
	if (LocalShard(relid, &table, &shard))
	{
		/* A unique index key of the shard, by its name; any other index only as the half of a partitioned one. */
		Oid referenced;
		bool rebuilds = Restoring() || (stmt->unique && stmt->idxname != NULL &&
		                                ShardKeyNamed(table, shard->shardid, stmt->idxname, &referenced) == 'i');
		if (!rebuilds || stmt->concurrent)
			return false;
		RequireTableOwner(table);
		CallPreviousUtility(call);
		return true;
	}

	/* CREATE INDEX ... ON ONLY: the coordinator's partitioned index, which the local shards' indexes attach to. */
	if (!Restoring() || stmt->relation->inh || stmt->unique || stmt->concurrent ||
	    catalog::LookupDistributedTable(relid) == NULL)
		return false;
	RequireTableOwner(relid);
	CallPreviousUtility(call);
	/* A table without local shards gets no ATTACH: its index is complete as made. */
	Oid index = get_relname_relid(stmt->idxname, get_rel_namespace(relid));
	if (OidIsValid(index))
		ValidateIfComplete(index, relid);
	InvalidateDistributedTable(relid);
	return true;
}

bool
ProcessAttachShardIndex(UtilityCall *call, AlterTableStmt *stmt)
{
	if (list_length(stmt->cmds) != 1 || ((AlterTableCmd *) linitial(stmt->cmds))->subtype != AT_AttachPartition)
		return false;
	Oid parent_index = RangeVarGetRelid(stmt->relation, NoLock, true);
	PartitionCmd *attach = (PartitionCmd *) ((AlterTableCmd *) linitial(stmt->cmds))->def;
	Oid child_index = RangeVarGetRelid(attach->name, NoLock, true);
	if (!OidIsValid(parent_index) || !OidIsValid(child_index) ||
	    get_rel_relkind(parent_index) != RELKIND_PARTITIONED_INDEX || get_rel_relkind(child_index) != RELKIND_INDEX)
		return false;

	Oid table = IndexGetRelation(parent_index, false);
	Oid shard_table;
	const catalog::CachedShard *shard;
	if (!LocalShard(IndexGetRelation(child_index, false), &shard_table, &shard) || shard_table != table)
		return false;
	RequireTableOwner(table);
	CallPreviousUtility(call);
	ValidateIfComplete(parent_index, table);
	InvalidateDistributedTable(table);
	return true;
}

bool
ProcessRestoredTrigger(UtilityCall *call, CreateTrigStmt *stmt)
{
	if (strcmp(stmt->trigname, "fdwshard_relocate_row") != 0 || list_length(stmt->funcname) != 2 ||
	    strcmp(strVal(linitial(stmt->funcname)), "fdwshard") != 0 ||
	    strcmp(strVal(lsecond(stmt->funcname)), "relocate_row") != 0)
		return false;

	Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (OidIsValid(relid) && catalog::LookupDistributedTable(relid) == NULL &&
	    get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" is not distributed, so fdwshard's trigger cannot be created on it",
		                       stmt->relation->relname),
		                errdetail("A dump restored without fdwshard's catalog rows leaves such tables: partitioned, "
		                          "their foreign partitions still pointing at the workers' shards, not distributed."),
		                errhint("Restore a dump of the whole coordinator database, made by pg_dump without "
		                        "--schema-only or --table: fdwshard's catalog is part of its data. DROP TABLE removes "
		                        "what this restore made, on this database only.")));
	if (!OidIsValid(relid) || catalog::LookupDistributedTable(relid) == NULL)
		return false;
	RequireTableOwner(relid);
	CallPreviousUtility(call);
	InvalidateDistributedTable(relid);
	return true;
}

} // namespace fdwshard::commands
