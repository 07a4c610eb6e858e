/*
 * create_distributed_table: turns a table into a partitioned table whose partitions are shards,
 * local tables on the coordinator and postgres_fdw foreign tables over tables on workers. Runs in
 * the caller's transaction, remote DDL included, so any failure leaves nothing behind anywhere.
 */
#include "fdwshard/catalog/metadata.h"
#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/commands/shard_ddl.h"
#include "fdwshard/commands/shard_keys.h"
#include "fdwshard/core/shard_range.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/executor/relocate_row.h"
#include "fdwshard/operations/dependent_views.h"
#include "fdwshard/operations/move_rows.h"
#include "fdwshard/operations/shard_partitions.h"
#include "fdwshard/operations/table_lock.h"
#include "fdwshard/operations/table_properties.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"
#include "fdwshard/remote/user_mapping.h"

namespace fdwshard
{

namespace
{

using namespace catalog;
using remote::QualifiedName;

/* An index of the table as it was, to be rebuilt on the new table or on every shard. */
struct SavedIndex
{
	char *name;
	char *definition;     /* pg_get_indexdef() against the original table */
	bool unique;          /* enforced per shard */
	char kind;            /* shard key kind: 'p' primary key, 'u' unique constraint, 'i' unique index */
	char *constraint;     /* PRIMARY KEY / UNIQUE constraint name, or NULL */
	char *constraint_def; /* pg_get_constraintdef(), or NULL */
	List *key_columns;    /* PRIMARY KEY / UNIQUE constraint: its columns (String), in key order */
};

/* What create_distributed_table needs to know about the table it replaces. */
struct TableSnapshot
{
	Oid relid;
	char *schema;
	char *name;
	Oid owner;
	char *column;
	AttrNumber attnum;
	Oid column_type;
	List *indexes;              /* SavedIndex * */
	TableProperties properties; /* grants, owned sequences, identity columns, comment */
};

const char *
RelName(const TableSnapshot &table)
{
	return QualifiedName(table.schema, table.name);
}

void
CheckTableKind(Relation rel)
{
	const char *name = RelationGetRelationName(rel);
	Form_pg_class form = rel->rd_rel;

	if (IsDistributedTable(RelationGetRelid(rel)))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" is already distributed", name)));
	if (form->relkind == RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
		        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("cannot distribute foreign table \"%s\"", name)));
	if (form->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
		        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("cannot distribute partitioned table \"%s\"", name),
		         errhint("fdwshard partitions the table itself; distribute a plain table.")));
	if (form->relkind != RELKIND_RELATION)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a table", name)));
	if (form->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
		        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("cannot distribute temporary table \"%s\"", name)));
	if (form->relpersistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("cannot distribute unlogged table \"%s\"", name),
		                errhint("Partitioned tables cannot be unlogged in PostgreSQL 15.")));
	if (form->relispartition)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot distribute table \"%s\" because it is a partition", name)));
	if (has_superclass(RelationGetRelid(rel)) || has_subclass(RelationGetRelid(rel)))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot distribute table \"%s\" because it is part of an inheritance hierarchy", name)));
}

/* Objects that would not survive the table being rebuilt are refused rather than silently lost (views are rebuilt). */
void
CheckDependents(Oid relid, const char *name)
{
	if (SpiRun("SELECT conname, conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND confrelid = $1 "
	           "ORDER BY conname LIMIT 1",
	           {OidArg(relid)}) > 0)
		ereport(ERROR,
		        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		         errmsg("cannot distribute table \"%s\" because foreign key \"%s\" on table \"%s\" references it", name,
		                SpiText(0, 1), SpiText(0, 2)),
		         errhint("Foreign keys to distributed tables are not supported yet: drop the constraint first.")));
	if (SpiRun("SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = $1 ORDER BY conname LIMIT 1",
	           {OidArg(relid)}) > 0)
		ereport(ERROR,
		        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		         errmsg("cannot distribute table \"%s\" because it has foreign key \"%s\"", name, SpiText(0, 1)),
		         errhint("Foreign keys on distributed tables are not supported yet: drop the constraint first.")));
	if (SpiRun("SELECT tgname FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal ORDER BY tgname LIMIT 1",
	           {OidArg(relid)}) > 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot distribute table \"%s\" because it has trigger \"%s\"", name, SpiText(0, 1)),
		                errhint("Triggers on distributed tables are not supported yet: drop the trigger first.")));
	if (SpiRun("SELECT 1 FROM pg_class WHERE oid = $1 AND (relrowsecurity OR relhasrules)", {OidArg(relid)}) > 0 ||
	    SpiRun("SELECT 1 FROM pg_policy WHERE polrelid = $1", {OidArg(relid)}) > 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot distribute table \"%s\" because it has rules or row level security", name)));
}

void
CheckDistributionColumn(Relation rel, TableSnapshot &table)
{
	const char *name = RelationGetRelationName(rel);

	table.attnum = get_attnum(table.relid, table.column);
	if (table.attnum == InvalidAttrNumber)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
		                errmsg("column \"%s\" of relation \"%s\" does not exist", table.column, name)));
	if (table.attnum < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
		                errmsg("cannot distribute by system column \"%s\"", table.column)));

	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), table.attnum - 1);
	if (att->attgenerated != '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
		                errmsg("cannot distribute by generated column \"%s\"", table.column)));
	table.column_type = att->atttypid;
	if (!TypeIsHashable(table.column_type))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
		                errmsg("could not identify a hash function for type %s", format_type_be(table.column_type)),
		                errdetail("Column \"%s\" cannot be a distribution column.", table.column),
		                errhint("A distribution column needs a type with a hash operator class, such as integer, "
		                        "text or uuid.")));
}

/*
 * Saves every index; refuses unique ones that cannot be enforced per shard. Definitions are
 * deparsed with search_path emptied: they are replayed on the workers, where the caller's
 * search_path means nothing (or something else).
 */
void
SaveIndexes(TableSnapshot &table)
{
	int nest_level = remote::BeginQualifiedDeparse();
	uint64 count =
	    SpiRun("SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisexclusion, "
	           "$2 = ANY (i.indkey[0:i.indnkeyatts - 1]), con.conname, pg_get_constraintdef(con.oid), con.contype, "
	           "con.oid::int8 "
	           "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
	           "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
	           "WHERE i.indrelid = $1 ORDER BY c.relname",
	           {OidArg(table.relid), Int4Arg(table.attnum)});
	remote::EndQualifiedDeparse(nest_level);

	for (uint64 row = 0; row < count; row++)
	{
		SavedIndex *index = (SavedIndex *) palloc0(sizeof(SavedIndex));

		index->name = SpiText(row, 1);
		index->definition = SpiText(row, 2);
		index->unique = SpiBool(row, 3);
		index->constraint = SpiText(row, 6);
		index->constraint_def = SpiText(row, 7);
		index->kind = index->constraint == NULL ? 'i' : SpiText(row, 8)[0];
		if (index->kind == 'p' || index->kind == 'u')
			index->key_columns = commands::ConstraintColumns((Oid) SpiInt8(row, 9));
		if (SpiBool(row, 4))
			ereport(ERROR,
			        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			         errmsg("cannot distribute table \"%s\": exclusion constraints are not supported", table.name)));
		if (index->unique && !SpiBool(row, 5))
			ereport(ERROR,
			        (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
			         errmsg("cannot distribute table \"%s\": %s \"%s\" does not include distribution column \"%s\"",
			                table.name, index->constraint ? "constraint" : "unique index",
			                index->constraint ? index->constraint : index->name, table.column),
			         errhint("Uniqueness is enforced shard by shard, so a primary key or unique constraint must "
			                 "include the distribution column: add \"%s\" to it or distribute by one of its columns.",
			                 table.column)));
		table.indexes = lappend(table.indexes, index);
	}
}

/* Co-location group and the node of each shard index. */
struct Placement
{
	int32 colocationid;
	bool new_group;
	Node **nodes; /* shard_count entries */
};

Placement
ChoosePlacement(const TableSnapshot &table, int shard_count, const char *colocate_with)
{
	Placement placement{0, false, (Node **) palloc0(sizeof(Node *) * shard_count)};
	Oid type_class = HashClassType(table.column_type);

	if (strcmp(colocate_with, "none") != 0)
	{
		if (strcmp(colocate_with, "default") == 0)
		{
			if (SpiRun("SELECT g.colocationid FROM fdwshard.colocation_group g WHERE g.shard_count = $1 "
			           "AND g.distribution_type = $2 AND EXISTS (SELECT 1 FROM fdwshard.distributed_table t "
			           "WHERE t.colocationid = g.colocationid) ORDER BY 1 LIMIT 1",
			           {Int4Arg(shard_count), OidArg(type_class)}) > 0)
				placement.colocationid = SpiInt4(0, 1);
		}
		else
		{
			List *names = stringToQualifiedNameList(colocate_with);
			Oid other = RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock, false);

			if (SpiRun("SELECT t.colocationid, g.shard_count, g.distribution_type FROM fdwshard.distributed_table t "
			           "JOIN fdwshard.colocation_group g USING (colocationid) WHERE t.logicalrelid = $1",
			           {OidArg(other)}) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				                errmsg("cannot co-locate with \"%s\": it is not a distributed table", colocate_with)));
			placement.colocationid = SpiInt4(0, 1);
			if (SpiInt4(0, 2) != shard_count)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				                errmsg("cannot co-locate \"%s\" with \"%s\": shard counts differ (%d and %d)",
				                       table.name, colocate_with, shard_count, SpiInt4(0, 2)),
				                errhint("Leave out shard_count, or pass %d.", SpiInt4(0, 2))));
			bool is_null;
			Oid other_type = DatumGetObjectId(SpiValue(0, 3, &is_null));
			if (other_type != type_class)
				ereport(
				    ERROR,
				    (errcode(ERRCODE_DATATYPE_MISMATCH),
				     errmsg("cannot co-locate \"%s\" with \"%s\": distribution column types differ (%s and %s)",
				            table.name, colocate_with, format_type_be(table.column_type), format_type_be(other_type))));
		}
	}

	if (placement.colocationid != 0)
	{
		/* Shard i of every table in a group lives on the node of the group's shard i. */
		uint64 count = SpiRun("SELECT p.nodeid FROM fdwshard.shard s JOIN fdwshard.placement p USING (shardid) "
		                      "WHERE s.logicalrelid = (SELECT logicalrelid FROM fdwshard.distributed_table "
		                      "WHERE colocationid = $1 ORDER BY logicalrelid LIMIT 1) ORDER BY s.shard_index",
		                      {Int4Arg(placement.colocationid)});
		if (count != (uint64) shard_count)
			elog(ERROR, "fdwshard: co-location group %d has " UINT64_FORMAT " placements, expected %d",
			     placement.colocationid, count, shard_count);
		int32 *nodeids = (int32 *) palloc(sizeof(int32) * shard_count);
		for (int i = 0; i < shard_count; i++)
			nodeids[i] = SpiInt4(i, 1);
		for (int i = 0; i < shard_count; i++)
			placement.nodes[i] = ReadNode(nodeids[i], false);
		return placement;
	}

	List *nodes = NodesForNewShards();
	if (nodes == NIL)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("no node can hold shards"),
		                errhint("Add a worker with fdwshard_add_node() or let a node hold shards with "
		                        "fdwshard_set_node_property(nodeid, 'should_have_shards', true).")));
	for (int i = 0; i < shard_count; i++)
		placement.nodes[i] = (Node *) list_nth(nodes, i % list_length(nodes));

	CatalogWrite("INSERT INTO fdwshard.colocation_group (colocationid, shard_count, distribution_type) "
	             "VALUES (nextval('fdwshard.colocationid_seq'), $1, $2) RETURNING colocationid",
	             {Int4Arg(shard_count), OidArg(type_class)});
	placement.colocationid = SpiInt4(0, 1);
	placement.new_group = true;
	return placement;
}

/*
 * Foreign shards are created as the current user, who reaches each worker through their own user
 * mapping and needs USAGE on its server for the foreign tables: refused before any change.
 */
void
CheckWorkerAccess(const Placement &placement, int shard_count)
{
	List *checked = NIL;

	for (int i = 0; i < shard_count; i++)
	{
		Node *node = placement.nodes[i];
		if (node->is_local || list_member_oid(checked, node->serverid))
			continue;
		remote::RequireServerUsage(node->serverid);
		remote::RequireUserMapping(node->serverid);
		checked = lappend_oid(checked, node->serverid);
	}
}

/* Statements for the workers, one string per worker: DDL on many shards of a worker in one round trip. */
struct WorkerBatches
{
	List *servers; /* Oid */
	List *sqls;    /* StringInfo, the statements for the server at the same position */
};

void
AddToBatch(WorkerBatches &batches, Oid serverid, const char *statement)
{
	int position = list_length(batches.servers);
	ListCell *cell;
	foreach (cell, batches.servers)
		if (lfirst_oid(cell) == serverid)
			position = foreach_current_index(cell);
	if (position == list_length(batches.servers))
	{
		batches.servers = lappend_oid(batches.servers, serverid);
		batches.sqls = lappend(batches.sqls, makeStringInfo());
	}
	StringInfo sql = (StringInfo) list_nth(batches.sqls, position);
	if (sql->len > 0)
		appendStringInfoString(sql, "; ");
	appendStringInfoString(sql, statement);
}

/*
 * Runs every worker's batch, all workers at once. Shard tables are created by the role the
 * current user's mapping logs in as on each worker: a refusal to create them there says so.
 */
void
RunBatches(const WorkerBatches &batches, bool creates_tables)
{
	MemoryContext caller = CurrentMemoryContext;
	int count = list_length(batches.servers);
	Oid *servers = (Oid *) palloc0(sizeof(Oid) * (count + 1));
	const char **sqls = (const char **) palloc0(sizeof(char *) * (count + 1));
	volatile int failed = 0;

	if (count == 0)
		return;
	for (int i = 0; i < count; i++)
	{
		servers[i] = list_nth_oid(batches.servers, i);
		sqls[i] = ((StringInfo) list_nth(batches.sqls, i))->data;
	}
	PG_TRY();
	{
		remote::ExecuteOnServers(count, servers, sqls, (int *) &failed);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		ErrorData *edata = CopyErrorData();
		if (!creates_tables || edata->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE || edata->hint != NULL)
			PG_RE_THROW();
		FlushErrorState();
		edata->hint = psprintf("The user mapping of role %s for server %s logs in as a role of the worker that "
		                       "needs CREATE on the table's schema there.",
		                       quote_identifier(GetUserNameFromId(GetUserId(), false)),
		                       quote_identifier(GetForeignServer(servers[failed])->servername));
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/* CREATE [UNIQUE] INDEX for one shard, from the definition against the original table. */
char *
ShardIndexDefinition(const TableSnapshot &table, const SavedIndex *index, const char *shard_name, int64 shardid)
{
	char *prefix = psprintf("CREATE %sINDEX %s ON %s USING ", index->unique ? "UNIQUE " : "",
	                        quote_identifier(index->name), RelName(table));

	if (strncmp(index->definition, prefix, strlen(prefix)) != 0)
		elog(ERROR, "fdwshard: unexpected index definition: %s", index->definition);
	return psprintf("CREATE %sINDEX %s ON %s USING %s", index->unique ? "UNIQUE " : "",
	                quote_identifier(remote::NameWithSuffix(index->name, shardid)),
	                QualifiedName(table.schema, shard_name), index->definition + strlen(prefix));
}

/* One shard: its name, range and node, as created. */
struct CreatedShard
{
	int64 shardid;
	char *name;
	Node *node;
};

/* Without shard_count: the count of the table named by colocate_with, or 32. */
int
DefaultShardCount(const char *colocate_with)
{
	constexpr int kDefaultShardCount = 32;
	if (pg_strcasecmp(colocate_with, "default") != 0 && pg_strcasecmp(colocate_with, "none") != 0)
	{
		Oid other = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(colocate_with)), NoLock, true);
		const catalog::CachedTable *table = OidIsValid(other) ? catalog::LookupDistributedTable(other) : NULL;
		if (table != NULL)
			return table->shard_count;
	}
	return kDefaultShardCount;
}

void
CreateDistributedTable(Oid relid, const char *column, int shard_count, const char *colocate_with)
{
	TableSnapshot table{};

	if (!core::ValidShardCount(shard_count))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
		                errmsg("shard_count must be between %d and %d", core::kMinShardCount, core::kMaxShardCount)));
	if (!OidIsValid(HashFunctionOid()))
		elog(ERROR, "fdwshard: pg_catalog.fdwshard_hash(anyelement) is missing");

	SPI_connect();

	/* Kept locked until commit: nobody may see or write the table half-converted. */
	LockTableToReplace(relid, true);
	Relation rel = table_open(relid, NoLock);
	table.relid = relid;
	table.schema = get_namespace_name(RelationGetNamespace(rel));
	table.name = pstrdup(RelationGetRelationName(rel));
	table.owner = rel->rd_rel->relowner;
	table.column = pstrdup(column);
	Oid namespace_oid = RelationGetNamespace(rel);
	CheckTableKind(rel);
	CheckDistributionColumn(rel, table);
	table_close(rel, NoLock);

	CheckDependents(relid, table.name);
	SaveIndexes(table);
	table.properties = ReadTableProperties(table.relid, RelName(table));
	List *views = SaveAndDropDependentViews(relid, table.name);
	Placement placement = ChoosePlacement(table, shard_count, colocate_with);
	CheckWorkerAccess(placement, shard_count);

	/* The old table steps aside; a partitioned table of the same shape takes its name. */
	char *old_name = psprintf("fdwshard_old_%u", relid);
	const char *old_rel = QualifiedName(table.schema, old_name);
	SpiRun(psprintf("ALTER TABLE %s RENAME TO %s", RelName(table), quote_identifier(old_name)));
	SpiRun(psprintf("CREATE TABLE %s (LIKE %s INCLUDING COMMENTS INCLUDING COMPRESSION INCLUDING CONSTRAINTS "
	                "INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STATISTICS INCLUDING STORAGE) "
	                "PARTITION BY RANGE (pg_catalog.fdwshard_hash(%s))",
	                RelName(table), old_rel, quote_identifier(column)));
	Oid new_relid = get_relname_relid(table.name, namespace_oid);
	/* Before the shards exist: PostgreSQL gives them the placeholders as it creates them, with no scan. */
	ListCell *cell;
	foreach (cell, table.indexes)
	{
		SavedIndex *index = (SavedIndex *) lfirst(cell);
		if (index->key_columns != NIL)
			commands::AddShardKeyPlaceholder(RelName(table), index->constraint, index->key_columns);
	}

	if (table.owner != GetUserId())
		SpiRun(psprintf("ALTER TABLE %s OWNER TO %s", RelName(table),
		                quote_identifier(GetUserNameFromId(table.owner, false))));
	foreach (cell, table.properties.owned_sequences)
		SpiRun((const char *) lfirst(cell));

	CatalogWrite("INSERT INTO fdwshard.distributed_table (logicalrelid, distribution_column, colocationid) "
	             "VALUES ($1, $2, $3)",
	             {OidArg(new_relid), TextArg(column), Int4Arg(placement.colocationid)});

	/*
	 * The shards: ids taken at once; the tables on the workers created in one round trip per
	 * worker; then their partitions here, one statement each, created in bulk (shard_partitions.h),
	 * and their catalog rows in one statement per catalog table.
	 */
	int64 *shardids = NextShardIds(shard_count);
	CreatedShard *shards = (CreatedShard *) palloc0(sizeof(CreatedShard) * shard_count);
	const char *columns = NULL; /* the shard tables' column list, built once */
	WorkerBatches tables{NIL, NIL};
	List *schema_ready = NIL; /* nodeids whose schema exists */
	for (int i = 0; i < shard_count; i++)
	{
		CreatedShard *shard = &shards[i];
		shard->shardid = shardids[i];
		shard->name = remote::NameWithSuffix(table.name, shard->shardid);
		shard->node = placement.nodes[i];
		if (shard->node->is_local)
			continue;
		if (!list_member_int(schema_ready, shard->node->nodeid))
		{
			commands::EnsureRemoteSchema(shard->node->serverid, table.schema);
			schema_ready = lappend_int(schema_ready, shard->node->nodeid);
		}
		if (columns == NULL)
			columns = remote::ShardTableColumns(new_relid);
		AddToBatch(tables, shard->node->serverid,
		           psprintf("CREATE TABLE %s %s", QualifiedName(table.schema, shard->name), columns));
	}
	RunBatches(tables, true);

	int32 *indexes = (int32 *) palloc0(sizeof(int32) * shard_count);
	int32 *min_hashes = (int32 *) palloc0(sizeof(int32) * shard_count);
	int32 *max_hashes = (int32 *) palloc0(sizeof(int32) * shard_count);
	int32 *nodeids = (int32 *) palloc0(sizeof(int32) * shard_count);
	Oid *shard_relids = (Oid *) palloc0(sizeof(Oid) * shard_count);
	const char *owner_name =
	    table.owner != GetUserId() ? quote_identifier(GetUserNameFromId(table.owner, false)) : NULL;
	ShardPartitions partitions = BeginShardPartitions(new_relid, RelName(table), table.schema);
	for (int i = 0; i < shard_count; i++)
	{
		CreatedShard *shard = &shards[i];
		core::HashRange range = core::ShardHashRange(i, shard_count);
		char *bound = (i == shard_count - 1)
		                  ? psprintf("FROM (%d) TO (MAXVALUE)", range.min_hash)
		                  : psprintf("FROM (%d) TO (" INT64_FORMAT ")", range.min_hash, (int64) range.max_hash + 1);
		const char *shard_rel = QualifiedName(table.schema, shard->name);

		if (shard->node->is_local)
			SpiRun(psprintf("CREATE TABLE %s () INHERITS (%s)", shard_rel, partitions.staging_name));
		else
			SpiRun(psprintf("CREATE FOREIGN TABLE %s () INHERITS (%s) SERVER %s "
			                "OPTIONS (schema_name %s, table_name %s)",
			                shard_rel, partitions.staging_name,
			                quote_identifier(GetForeignServer(shard->node->serverid)->servername),
			                quote_literal_cstr(table.schema), quote_literal_cstr(shard->name)));
		/* Shard relations belong to the table's owner, whose changes to the table recurse to them. */
		if (owner_name != NULL)
			SpiRun(psprintf("ALTER %s %s OWNER TO %s", shard->node->is_local ? "TABLE" : "FOREIGN TABLE", shard_rel,
			                owner_name));
		indexes[i] = i;
		min_hashes[i] = range.min_hash;
		max_hashes[i] = range.max_hash;
		nodeids[i] = shard->node->nodeid;
		shard_relids[i] = get_relname_relid(shard->name, namespace_oid);
		AdoptShardPartition(partitions, shard_relids[i], bound);
	}
	EndShardPartitions(partitions);

	/* postgres_fdw updates rows in place on the worker: this trigger moves a row whose shard changed. */
	SpiRun(psprintf("CREATE TRIGGER %s AFTER UPDATE OF %s ON %s FOR EACH ROW EXECUTE FUNCTION fdwshard.relocate_row()",
	                kRelocateTriggerName, quote_identifier(column), RelName(table)));
	CatalogWrite("INSERT INTO fdwshard.shard (shardid, logicalrelid, shard_index, min_hash, max_hash, shard_relid) "
	             "SELECT s.shardid, $1, s.shard_index, s.min_hash, s.max_hash, s.shard_relid::regclass "
	             "FROM unnest($2, $3, $4, $5, $6) AS s (shardid, shard_index, min_hash, max_hash, shard_relid)",
	             {OidArg(new_relid), Int8ArrayArg(shardids, shard_count), Int4ArrayArg(indexes, shard_count),
	              Int4ArrayArg(min_hashes, shard_count), Int4ArrayArg(max_hashes, shard_count),
	              OidArrayArg(shard_relids, shard_count)});
	CatalogWrite("INSERT INTO fdwshard.placement (shardid, nodeid) SELECT * FROM unnest($1, $2)",
	             {Int8ArrayArg(shardids, shard_count), Int4ArrayArg(nodeids, shard_count)});

	/* The rows move: large COPYs to the shards, or tuple routing when every shard is local. */
	(void) MoveRowsIntoShards(relid, new_relid, table.name);

	/* Identity columns got new sequences: carry the old ones' positions and names over. */
	List *renames = CarryOverIdentitySequences(table.properties, old_rel, RelName(table));
	SpiRun(psprintf("DROP TABLE %s", old_rel));
	foreach (cell, renames)
		SpiRun((const char *) lfirst(cell));

	RestoreGrantsAndComment(table.properties, RelName(table));

	/*
	 * Unique indexes and constraints on every shard; other indexes on the parent and remote shards.
	 * A worker's shards get theirs in one round trip.
	 */
	WorkerBatches keys{NIL, NIL};
	foreach (cell, table.indexes)
	{
		SavedIndex *index = (SavedIndex *) lfirst(cell);

		if (!index->unique)
			SpiRun(index->definition); /* a partitioned index: PostgreSQL builds it on local shards */
		else
			CatalogWrite("INSERT INTO fdwshard.shard_key (logicalrelid, name, kind) VALUES ($1, $2, $3)",
			             {OidArg(new_relid), TextArg(index->constraint != NULL ? index->constraint : index->name),
			              TextArg(index->kind == 'p'   ? "p"
			                      : index->kind == 'u' ? "u"
			                                           : "i")});
		for (int i = 0; i < shard_count; i++)
		{
			CreatedShard *shard = &shards[i];
			char *statement;

			if (!index->unique && shard->node->is_local)
				continue;
			if (index->constraint != NULL)
				statement = psprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", QualifiedName(table.schema, shard->name),
				                     quote_identifier(remote::NameWithSuffix(index->constraint, shard->shardid)),
				                     index->constraint_def);
			else
				statement = ShardIndexDefinition(table, index, shard->name, shard->shardid);
			if (shard->node->is_local)
				SpiRun(statement);
			else
				AddToBatch(keys, shard->node->serverid, statement);
		}
	}
	RunBatches(keys, false);

	RestoreDependentViews(views);
	SPI_finish();
	CacheInvalidateRelcacheByRelid(new_relid);
}

} // namespace

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(create_distributed_table);

	/* create_distributed_table(table_name regclass, distribution_column text, shard_count int, colocate_with text) */
	Datum create_distributed_table(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    for (int i = 0; i < 4; i++)
				    if (PG_ARGISNULL(i) && i != 2)
					    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					                    errmsg("arguments of create_distributed_table must not be NULL")));
			    const char *colocate_with = text_to_cstring(PG_GETARG_TEXT_PP(3));
			    int shard_count = PG_ARGISNULL(2) ? fdwshard::DefaultShardCount(colocate_with) : PG_GETARG_INT32(2);
			    /* fdwshard's own DDL: the utility hook neither propagates nor refuses it. */
			    fdwshard::commands::WithoutPropagation(
			        [&]()
			        {
				        fdwshard::CreateDistributedTable(PG_GETARG_OID(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
				                                         shard_count, colocate_with);
			        });
			    PG_RETURN_VOID();
		    });
	}
}
