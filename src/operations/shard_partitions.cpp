/*
 * Shard partitions created in bulk (see operations/shard_partitions.h): each is created as an
 * inheritance child of a staging table, then made a partition of the distributed table in the
 * catalog, as ALTER TABLE ... ATTACH PARTITION would leave it, without its per-partition scans.
 */
#include "fdwshard/operations/shard_partitions.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard
{

namespace
{

/* bound ("FROM (...) TO (...)") as PostgreSQL stores it for a partition of parent. */
PartitionBoundSpec *
TransformedBound(Relation parent, const char *bound)
{
	List *parsed = raw_parser(psprintf("CREATE TABLE fdwshard_bound PARTITION OF fdwshard_bound FOR VALUES %s", bound),
	                          RAW_PARSE_DEFAULT);
	if (list_length(parsed) != 1 || !IsA(((RawStmt *) linitial(parsed))->stmt, CreateStmt))
		elog(ERROR, "fdwshard: not a partition bound: %s", bound);
	CreateStmt *stmt = (CreateStmt *) ((RawStmt *) linitial(parsed))->stmt;
	return transformPartitionBound(make_parsestate(NULL), parent, stmt->partbound);
}

/* pg_inherits: the shard's one row names the parent instead of the staging table. */
void
MoveInheritsRow(Oid shard_relid, Oid from, Oid to)
{
	Relation inherits = table_open(InheritsRelationId, RowExclusiveLock);
	ScanKeyData key;
	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(shard_relid));
	SysScanDesc scan = systable_beginscan(inherits, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
	int moved = 0;
	HeapTuple tuple;
	while ((tuple = systable_getnext(scan)) != NULL)
	{
		if (((Form_pg_inherits) GETSTRUCT(tuple))->inhparent != from)
			continue;
		HeapTuple copy = heap_copytuple(tuple);
		((Form_pg_inherits) GETSTRUCT(copy))->inhparent = to;
		CatalogTupleUpdate(inherits, &copy->t_self, copy);
		heap_freetuple(copy);
		moved++;
	}
	systable_endscan(scan);
	table_close(inherits, RowExclusiveLock);
	if (moved != 1)
		elog(ERROR, "fdwshard: relation %u does not inherit from the staging table", shard_relid);
}

/* pg_class: relispartition and relpartbound, as StorePartitionBound sets them. */
void
StoreBound(Oid shard_relid, PartitionBoundSpec *bound)
{
	Relation classes = table_open(RelationRelationId, RowExclusiveLock);
	HeapTuple tuple = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(shard_relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", shard_relid);
	Datum values[Natts_pg_class] = {0};
	bool nulls[Natts_pg_class] = {false};
	bool replace[Natts_pg_class] = {false};
	values[Anum_pg_class_relpartbound - 1] = CStringGetTextDatum(nodeToString(bound));
	replace[Anum_pg_class_relpartbound - 1] = true;
	HeapTuple updated = heap_modify_tuple(tuple, RelationGetDescr(classes), values, nulls, replace);
	((Form_pg_class) GETSTRUCT(updated))->relispartition = true;
	CatalogTupleUpdate(classes, &updated->t_self, updated);
	heap_freetuple(updated);
	heap_freetuple(tuple);
	table_close(classes, RowExclusiveLock);
}

} // namespace

ShardPartitions
BeginShardPartitions(Oid parent, const char *parent_name, const char *schema)
{
	ShardPartitions partitions;
	partitions.parent = parent;
	char *name = psprintf("fdwshard_staging_%u", parent);
	partitions.staging_name = remote::QualifiedName(schema, name);
	/* What a child inherits: columns, NOT NULL, defaults, generated columns, CHECK constraints, storage. */
	catalog::SpiRun(psprintf("CREATE TABLE %s (LIKE %s INCLUDING COMPRESSION INCLUDING CONSTRAINTS INCLUDING DEFAULTS "
	                         "INCLUDING GENERATED INCLUDING STORAGE)",
	                         partitions.staging_name, parent_name));
	partitions.staging = get_relname_relid(name, get_rel_namespace(parent));
	if (!OidIsValid(partitions.staging))
		elog(ERROR, "fdwshard: staging table %s was not created", partitions.staging_name);
	return partitions;
}

void
AdoptShardPartition(const ShardPartitions &partitions, Oid shard_relid, const char *bound)
{
	Relation parent = table_open(partitions.parent, NoLock);
	PartitionBoundSpec *spec = TransformedBound(parent, bound);
	table_close(parent, NoLock);

	MoveInheritsRow(shard_relid, partitions.staging, partitions.parent);
	/* An inheritance child depends normally on its parent; a partition automatically. */
	if (deleteDependencyRecordsForSpecific(RelationRelationId, shard_relid, DEPENDENCY_NORMAL, RelationRelationId,
	                                       partitions.staging) != 1)
		elog(ERROR, "fdwshard: relation %u does not depend on the staging table", shard_relid);
	ObjectAddress child, parent_address;
	ObjectAddressSet(child, RelationRelationId, shard_relid);
	ObjectAddressSet(parent_address, RelationRelationId, partitions.parent);
	recordDependencyOn(&child, &parent_address, DEPENDENCY_AUTO);
	StoreBound(shard_relid, spec); /* invalidates the shard's relcache entry */
	CommandCounterIncrement();
}

void
EndShardPartitions(const ShardPartitions &partitions)
{
	/* The parent's partition descriptor is built once, when next read. */
	SetRelationHasSubclass(partitions.parent, true);
	CacheInvalidateRelcacheByRelid(partitions.parent);
	CommandCounterIncrement();
	catalog::SpiRun(psprintf("DROP TABLE %s", partitions.staging_name));
}

} // namespace fdwshard
