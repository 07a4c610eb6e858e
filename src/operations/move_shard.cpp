/*
 * fdwshard_move_shard: moves a shard group (the shards of one index of a co-location group) to
 * another node, the coordinator included. block_writes: writes to the group's tables wait for the
 * whole move (reads go on until the switch); the new shard tables are made on the target and
 * filled with the bulk path (executor/shard_copy.h). online: the new tables are made and filled
 * by logical replication (operations/move_replication.h) while writes go on, and writes wait only
 * for the switch. Either way the coordinator's partitions, the catalog and the old tables switch in
 * the caller's transaction, remote DDL included (two-phase commit when two workers are written),
 * so a failure anywhere leaves every shard where it was.
 */
#include "fdwshard/catalog/metadata.h"
#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/catalog/spi.h"
#include "fdwshard/commands/shard_ddl.h"
#include "fdwshard/executor/shard_copy.h"
#include "fdwshard/guard.h"
#include "fdwshard/operations/move_progress.h"
#include "fdwshard/operations/move_replication.h"
#include "fdwshard/remote/connection.h"
#include "fdwshard/remote/deparse.h"
#include "fdwshard/remote/node_session.h"
#include "fdwshard/remote/user_mapping.h"

namespace fdwshard
{

namespace
{

using namespace catalog;
using remote::QualifiedName;
using namespace operations;

/* Rows read from the old shard before they go to the new one. */
constexpr int kBatchRows = 1000;

/* Lock field of the advisory lock that keeps two moves of one shard group apart. */
constexpr uint16 kMoveLockField = 0x4653; /* "FS" */

/*
 * The comment an online move puts on the shard tables it makes on the target until they switch
 * in: a table of the shard's name that carries it is a copy left by a failed move, safe to drop.
 */
constexpr const char *kCopyComment = "fdwshard: copy of a shard being moved online";

/* One table's shard of the group, as it is and as it will be. */
struct MovedShard
{
	int64 shardid;
	Oid logical_relid;
	char *schema;
	char *table;    /* the distributed table's name */
	char *name;     /* the shard relation's name: the same on every node */
	Oid old_relid;  /* its relation on the coordinator now */
	bool old_local; /* a local table now (else a foreign table) */
	char *bound;    /* FOR VALUES ... of its partition */
	Oid owner;      /* the distributed table's owner, who owns the shard relations */
	List *keys;     /* ALTER TABLE ADD CONSTRAINT / CREATE UNIQUE INDEX for the new shard table */
	List *foreign_keys;
	List *plain_indexes; /* CREATE INDEX for a remote shard table (a local one gets them from its parent) */
	uint64 rows;
};

const char *
ShardRel(const MovedShard &shard)
{
	return QualifiedName(shard.schema, shard.name);
}

const char *
TableRel(const MovedShard &shard)
{
	return QualifiedName(shard.schema, shard.table);
}

/*
 * The keys and indexes of the shard table as they are on its node, as statements that make them
 * on a table of the same name: constraints (primary key, unique, foreign keys to the group's other
 * shards) and unique indexes; plain indexes the shard has of its own (remote shards). Deparsed
 * with search_path emptied on either side, so every name is qualified.
 */
void
ReadShardKeys(MovedShard &shard, const Node *source)
{
	const char *rel = quote_literal_cstr(ShardRel(shard));
	char *sql = psprintf(
	    "SELECT coalesce(json_agg(json_build_array(kind, def) ORDER BY ord, name)::text, '[]') FROM ("
	    "SELECT CASE c.contype WHEN 'f' THEN 3 ELSE 1 END AS ord, CASE c.contype WHEN 'f' THEN 'f' ELSE 'k' END "
	    "AS kind, c.conname AS name, format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', %s, c.conname, "
	    "pg_catalog.pg_get_constraintdef(c.oid)) AS def FROM pg_catalog.pg_constraint c "
	    "WHERE c.conrelid = %s::pg_catalog.regclass AND c.contype IN ('p', 'u', 'f') "
	    "UNION ALL SELECT 2, CASE WHEN i.indisunique THEN 'k' ELSE 'i' END, x.relname, "
	    "pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i "
	    "JOIN pg_catalog.pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = %s::pg_catalog.regclass "
	    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid "
	    "AND c.conrelid = i.indrelid) "
	    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid)) d",
	    rel, rel, rel);
	char *json;
	if (source->is_local)
	{
		int nest_level = remote::BeginQualifiedDeparse();
		SpiRun(sql);
		json = SpiText(0, 1);
		remote::EndQualifiedDeparse(nest_level);
	}
	else
		json = remote::QueryOnServer(source->serverid, sql);

	uint64 count =
	    SpiRun("SELECT e ->> 0, e ->> 1 FROM pg_catalog.json_array_elements($1::pg_catalog.json) e", {TextArg(json)});
	for (uint64 row = 0; row < count; row++)
	{
		char *kind = SpiText(row, 1);
		char *definition = SpiText(row, 2);
		if (kind[0] == 'f')
			shard.foreign_keys = lappend(shard.foreign_keys, definition);
		else if (kind[0] == 'k')
			shard.keys = lappend(shard.keys, definition);
	}
}

/* CREATE INDEX <index>_<shardid> ON the shard for each plain index of the distributed table, as remote shards have. */
void
ReadPlainIndexes(MovedShard &shard)
{
	int nest_level = remote::BeginQualifiedDeparse();
	uint64 count =
	    SpiRun("SELECT c.relname, pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i "
	           "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1 AND NOT i.indisunique "
	           "ORDER BY 1",
	           {OidArg(shard.logical_relid)});
	remote::EndQualifiedDeparse(nest_level);
	for (uint64 row = 0; row < count; row++)
	{
		char *index = SpiText(row, 1);
		char *definition = SpiText(row, 2);
		/* "CREATE INDEX name ON ONLY schema.table USING ...": the part from USING on is the shard's too. */
		char *tail = strstr(definition, " USING ");
		if (tail == NULL)
			elog(ERROR, "fdwshard: unexpected index definition: %s", definition);
		shard.plain_indexes =
		    lappend(shard.plain_indexes,
		            psprintf("CREATE INDEX %s ON %s%s", quote_identifier(remote::NameWithSuffix(index, shard.shardid)),
		                     ShardRel(shard), tail));
	}
}

/*
 * The shards of the group of shardid, by table (referenced tables of shard foreign keys first). Their
 * tables are locked against DDL and other moves; writes go on until the mode takes a stronger lock.
 */
List *
LoadGroup(int64 shardid, int32 *colocationid, int32 *shard_index, int32 *source_nodeid)
{
	if (SpiRun("SELECT t.colocationid, s.shard_index, p.nodeid FROM fdwshard.shard s "
	           "JOIN fdwshard.distributed_table t USING (logicalrelid) JOIN fdwshard.placement p USING (shardid) "
	           "WHERE s.shardid = $1",
	           {Int8Arg(shardid)}) == 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("shard " INT64_FORMAT " does not exist", shardid),
		                errhint("The shards and their ids are listed in fdwshard.shards.")));
	*colocationid = SpiInt4(0, 1);
	*shard_index = SpiInt4(0, 2);
	*source_nodeid = SpiInt4(0, 3);

	/* A second move of the group fails at once rather than waiting for the first to copy everything. */
	LOCKTAG tag;
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) *colocationid, (uint32) *shard_index, kMoveLockField);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
		                errmsg("the shard group of shard " INT64_FORMAT " is being moved by another session", shardid),
		                errhint("Wait for that move to end, then try again.")));

	/* Referenced before referencing (shard foreign keys pair shards of one group), then by OID. */
	uint64 count = SpiRun(
	    "SELECT s.shardid, s.logicalrelid, s.shard_relid FROM fdwshard.shard s "
	    "JOIN fdwshard.distributed_table t USING (logicalrelid) WHERE t.colocationid = $1 AND s.shard_index = $2 "
	    "ORDER BY (SELECT count(*) FROM fdwshard.shard_key k WHERE k.logicalrelid = s.logicalrelid AND k.kind = 'f'), "
	    "s.logicalrelid",
	    {Int4Arg(*colocationid), Int4Arg(*shard_index)});
	List *group = NIL;
	for (uint64 row = 0; row < count; row++)
	{
		MovedShard *shard = (MovedShard *) palloc0(sizeof(MovedShard));
		bool is_null = false;
		shard->shardid = SpiInt8(row, 1);
		shard->logical_relid = DatumGetObjectId(SpiValue(row, 2, &is_null));
		shard->old_relid = DatumGetObjectId(SpiValue(row, 3, &is_null));
		group = lappend(group, shard);
	}

	ListCell *cell;
	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		/* As ALTER TABLE: only the owner may move a table's rows around. */
		commands::RequireTableOwner(shard->logical_relid);
		LockRelationOid(shard->logical_relid, ShareUpdateExclusiveLock);
		shard->schema = get_namespace_name(get_rel_namespace(shard->logical_relid));
		shard->table = get_rel_name(shard->logical_relid);
		shard->name = get_rel_name(shard->old_relid);
		shard->old_local = get_rel_relkind(shard->old_relid) != RELKIND_FOREIGN_TABLE;
		SpiRun("SELECT relowner FROM pg_catalog.pg_class WHERE oid = $1", {OidArg(shard->logical_relid)});
		bool is_null;
		shard->owner = DatumGetObjectId(SpiValue(0, 1, &is_null));
		SpiRun("SELECT pg_catalog.pg_get_expr(relpartbound, oid) FROM pg_catalog.pg_class WHERE oid = $1",
		       {OidArg(shard->old_relid)});
		shard->bound = SpiText(0, 1);
	}
	return group;
}

Node *
TargetNode(int32 nodeid, int32 source_nodeid, int64 shardid)
{
	Node *target = ReadNode(nodeid, true);
	if (target == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("node %d does not exist", nodeid),
		                errhint("The nodes are listed in fdwshard.nodes.")));
	if (nodeid == source_nodeid)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("shard " INT64_FORMAT " is already on node %d", shardid, nodeid)));
	if (!target->should_have_shards)
		ereport(
		    ERROR,
		    (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("node %d does not take shards", nodeid),
		     errhint("Let it hold shards with fdwshard_set_node_property(%d, 'should_have_shards', true).", nodeid)));
	return target;
}

/* The old shard's rows into its new table: the bulk path, one large COPY per 512 kB for a remote target. */
void
CopyRows(MovedShard &shard, const Node *target, int32 shard_index, Oid new_local_relid)
{
	Relation rel = table_open(shard.logical_relid, NoLock);
	TupleDesc desc = RelationGetDescr(rel);
	const CachedTable *table = LookupDistributedTable(shard.logical_relid);
	StringInfoData columns;
	initStringInfo(&columns);
	int *attnums = (int *) palloc(sizeof(int) * desc->natts);
	int column_count = 0;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped)
			continue;
		appendStringInfo(&columns, "%s%s", column_count > 0 ? ", " : "", quote_identifier(NameStr(att->attname)));
		attnums[column_count++] = i;
	}

	operations::SetMovePhase("copying", shard.name);
	executor::ShardCopy *copy =
	    executor::BeginShardCopy(rel, table, psprintf("moving shard " INT64_FORMAT, shard.shardid));
	executor::ShardCopyRedirect(copy, shard_index, target->serverid, new_local_relid,
	                            target->is_local ? NULL : ShardRel(shard));

	/* Not read-only: a snapshot taken now, after the locks, sees every write that committed before them. */
	Portal portal = SPI_cursor_open_with_args(NULL, psprintf("SELECT %s FROM %s", columns.data, ShardRel(shard)), 0,
	                                          NULL, NULL, NULL, false, CURSOR_OPT_NO_SCROLL);
	Datum *values = (Datum *) palloc(sizeof(Datum) * desc->natts * kBatchRows);
	bool *nulls = (bool *) palloc(sizeof(bool) * desc->natts * kBatchRows);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, kBatchRows);
		uint64 count = SPI_processed;
		if (count == 0)
			break;
		for (uint64 row = 0; row < count; row++)
		{
			Datum *row_values = values + row * desc->natts;
			bool *row_nulls = nulls + row * desc->natts;
			for (int i = 0; i < desc->natts; i++)
				row_nulls[i] = true;
			for (int c = 0; c < column_count; c++)
				row_values[attnums[c]] =
				    SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, c + 1, &row_nulls[attnums[c]]);
		}
		executor::ShardCopyAdd(copy, (int) count, values, nulls, NULL);
		shard.rows += count;
		operations::AddMovedRows(count);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	executor::EndShardCopy(copy);
	table_close(rel, NoLock);
}

/* Changes the owner of a shard relation made by the current user to the table's owner. */
void
GiveToOwner(const MovedShard &shard, const char *keyword, const char *rel)
{
	if (shard.owner != GetUserId())
		SpiRun(
		    psprintf("ALTER %s %s OWNER TO %s", keyword, rel, quote_identifier(GetUserNameFromId(shard.owner, false))));
}

void
RecordPlacement(const MovedShard &shard, Oid new_relid, const Node *target)
{
	CatalogWrite("UPDATE fdwshard.shard SET shard_relid = $2 WHERE shardid = $1",
	             {Int8Arg(shard.shardid), OidArg(new_relid)});
	CatalogWrite("UPDATE fdwshard.placement SET nodeid = $2 WHERE shardid = $1",
	             {Int8Arg(shard.shardid), Int4Arg(target->nodeid)});
}

/* To the coordinator: a local table under a temporary name, filled, then put in the foreign shard's place. */
void
MoveToCoordinator(List *group, const Node *source, const Node *target, int32 shard_index)
{
	ListCell *cell;
	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		char *temporary = psprintf("fdwshard_moving_" INT64_FORMAT, shard->shardid);
		const char *temporary_rel = QualifiedName(shard->schema, temporary);
		SpiRun(psprintf("CREATE TABLE %s (LIKE %s INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE "
		                "INCLUDING COMPRESSION)",
		                temporary_rel, TableRel(*shard)));
		GiveToOwner(*shard, "TABLE", temporary_rel);
		Oid new_relid = get_relname_relid(temporary, get_rel_namespace(shard->logical_relid));
		CopyRows(*shard, target, shard_index, new_relid);

		/* The switch: the catalog first, so dropping the old shard is no shard's drop. */
		operations::SetMovePhase("switching", shard->name);
		SpiRun(psprintf("ALTER TABLE %s DETACH PARTITION %s", TableRel(*shard), ShardRel(*shard)));
		RecordPlacement(*shard, new_relid, target);
		SpiRun(psprintf("DROP FOREIGN TABLE %s", ShardRel(*shard)));
		SpiRun(psprintf("ALTER TABLE %s RENAME TO %s", temporary_rel, quote_identifier(shard->name)));
		SpiRun(psprintf("ALTER TABLE %s ATTACH PARTITION %s %s", TableRel(*shard), ShardRel(*shard), shard->bound));
	}
	foreach (cell, group)
	{
		ListCell *key;
		foreach (key, ((MovedShard *) lfirst(cell))->keys)
			SpiRun((const char *) lfirst(key));
	}
	foreach (cell, group)
	{
		ListCell *key;
		foreach (key, ((MovedShard *) lfirst(cell))->foreign_keys)
			SpiRun((const char *) lfirst(key));
	}
	StringInfoData drop;
	initStringInfo(&drop);
	foreach (cell, group)
		appendStringInfo(&drop, "%s%s", drop.len > 0 ? ", " : "DROP TABLE ", ShardRel(*(MovedShard *) lfirst(cell)));
	remote::ExecuteOnServer(source->serverid, drop.data);
}

/* The switch to a worker whose shard tables are ready: a foreign table in each old shard's place, the old tables
 * dropped. */
void
SwitchToWorker(List *group, const Node *source, const Node *target)
{
	ListCell *cell;
	StringInfoData drop;
	initStringInfo(&drop);
	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		char *moved = psprintf("fdwshard_moved_" INT64_FORMAT, shard->shardid);
		const char *keyword = shard->old_local ? "TABLE" : "FOREIGN TABLE";
		operations::SetMovePhase("switching", shard->name);
		SpiRun(psprintf("ALTER TABLE %s DETACH PARTITION %s", TableRel(*shard), ShardRel(*shard)));
		SpiRun(psprintf("ALTER %s %s RENAME TO %s", keyword, ShardRel(*shard), quote_identifier(moved)));
		SpiRun(psprintf("CREATE FOREIGN TABLE %s PARTITION OF %s %s SERVER %s OPTIONS (schema_name %s, table_name %s)",
		                ShardRel(*shard), TableRel(*shard), shard->bound,
		                quote_identifier(GetForeignServer(target->serverid)->servername),
		                quote_literal_cstr(shard->schema), quote_literal_cstr(shard->name)));
		GiveToOwner(*shard, "FOREIGN TABLE", ShardRel(*shard));
		RecordPlacement(*shard, get_relname_relid(shard->name, get_rel_namespace(shard->logical_relid)), target);
		appendStringInfo(&drop, "%s%s", drop.len > 0 ? ", " : "", QualifiedName(shard->schema, moved));
	}
	/* The old relations together: shard foreign keys between them go with them. */
	if (source->is_local)
		SpiRun(psprintf("DROP TABLE %s", drop.data));
	else
	{
		SpiRun(psprintf("DROP FOREIGN TABLE %s", drop.data));
		StringInfoData remote_drop;
		initStringInfo(&remote_drop);
		foreach (cell, group)
			appendStringInfo(&remote_drop, "%s%s", remote_drop.len > 0 ? ", " : "DROP TABLE ",
			                 ShardRel(*(MovedShard *) lfirst(cell)));
		remote::ExecuteOnServer(source->serverid, remote_drop.data);
	}
}

/* To a worker: the shard table made and filled there, then a foreign table in the old shard's place. */
void
MoveToWorker(List *group, const Node *source, const Node *target, int32 shard_index)
{
	ListCell *cell;
	List *schemas = NIL;
	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		if (!list_member_oid(schemas, get_rel_namespace(shard->logical_relid)))
		{
			commands::EnsureRemoteSchema(target->serverid, shard->schema);
			schemas = lappend_oid(schemas, get_rel_namespace(shard->logical_relid));
		}
		remote::ExecuteOnServer(target->serverid,
		                        remote::ShardTableDefinition(shard->logical_relid, shard->schema, shard->name));
		CopyRows(*shard, target, shard_index, InvalidOid);
		ReadPlainIndexes(*shard);
		/* The shard's keys and indexes in one round trip. */
		StringInfoData indexes;
		initStringInfo(&indexes);
		ListCell *key;
		foreach (key, shard->keys)
			appendStringInfo(&indexes, "%s%s", indexes.len > 0 ? "; " : "", (const char *) lfirst(key));
		foreach (key, shard->plain_indexes)
			appendStringInfo(&indexes, "%s%s", indexes.len > 0 ? "; " : "", (const char *) lfirst(key));
		if (indexes.len > 0)
			remote::ExecuteOnServer(target->serverid, indexes.data);
	}
	StringInfoData foreign_keys;
	initStringInfo(&foreign_keys);
	foreach (cell, group)
	{
		ListCell *key;
		foreach (key, ((MovedShard *) lfirst(cell))->foreign_keys)
			appendStringInfo(&foreign_keys, "%s%s", foreign_keys.len > 0 ? "; " : "", (const char *) lfirst(key));
	}
	if (foreign_keys.len > 0)
		remote::ExecuteOnServer(target->serverid, foreign_keys.data);

	SwitchToWorker(group, source, target);
}

/* A value read on node in the caller's transaction: SPI on the coordinator, postgres_fdw's connection on a worker. */
char *
QueryOnNode(const Node *node, const char *sql)
{
	if (!node->is_local)
		return remote::QueryOnServer(node->serverid, sql);
	if (SpiRun(sql) == 0)
		return NULL;
	return SpiText(0, 1);
}

/* Whether the source shard table has a replica identity: without one, UPDATE and DELETE cannot be replicated. */
bool
HasReplicaIdentity(const MovedShard &shard, const Node *source)
{
	char *answer = QueryOnNode(
	    source, psprintf("SELECT (c.relreplident IN ('f', 'i') OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM "
	                     "pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))::pg_catalog.text "
	                     "FROM pg_catalog.pg_class c WHERE c.oid = %s::pg_catalog.regclass",
	                     quote_literal_cstr(ShardRel(shard))));
	return answer != NULL && strcmp(answer, "true") == 0;
}

/*
 * Whether the group can move online: to a worker, outside a transaction block (its setup commits on the nodes
 * as it goes), as a superuser (PostgreSQL 15 lets only superusers create subscriptions), from a
 * source with wal_level = logical, every table with a replica identity. required: a refusal is
 * an error that says why.
 */
bool
CanMoveOnline(List *group, const Node *source, const Node *target, bool required)
{
	if (target->is_local)
	{
		if (!required)
			return false;
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("online shard moves to the coordinator are not supported"),
		                errdetail("The subscription would fill a table of the shard's name, which the coordinator "
		                          "gives to the foreign shard that serves the rows until the switch."),
		                errhint("Use mode => 'block_writes'.")));
	}
	if (IsTransactionBlock() || GetTopTransactionIdIfAny() != InvalidTransactionId)
	{
		if (!required)
			return false;
		ereport(ERROR, (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
		                errmsg("an online shard move cannot run inside a transaction block"),
		                errdetail("It commits its copy on the nodes while writes go on; only the final switch is part "
		                          "of its statement's transaction."),
		                errhint("Run it as a statement of its own, or use mode => 'block_writes'.")));
	}
	if (!superuser())
	{
		if (!required)
			return false;
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("only superusers can move shards online"),
		                errdetail("An online move copies through a subscription, which only superusers may create."),
		                errhint("Use mode => 'block_writes'.")));
	}
	char *wal_level = QueryOnNode(source, "SELECT pg_catalog.current_setting('wal_level')");
	if (wal_level == NULL || strcmp(wal_level, "logical") != 0)
	{
		if (!required)
			return false;
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("node %d has wal_level = %s, an online shard move needs logical", source->nodeid,
		                       wal_level != NULL ? wal_level : "?"),
		                errdetail("An online move replicates the changes made on the source while it copies."),
		                errhint("Set wal_level = logical on that server and restart it, or use mode => "
		                        "'block_writes'.")));
	}
	ListCell *cell;
	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		if (HasReplicaIdentity(*shard, source))
			continue;
		if (!required)
			return false;
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table %s has no primary key, an online shard move needs one", TableRel(*shard)),
		                errdetail("Without a replica identity, the updates and deletes made while the shard is "
		                          "copied could not be replayed on the target."),
		                errhint("Add a primary key to the table, or use mode => 'block_writes'.")));
	}
	return true;
}

/* How a repair runs on a node: in the caller's transaction, or committed on its own (errors raised, or warned about).
 */
enum class RunAs
{
	kCallerTransaction,
	kOwnTransaction,
	kOwnTransactionTolerant,
};

char *
RunOnNode(const Node *node, const char *sql, RunAs how)
{
	if (how == RunAs::kCallerTransaction)
	{
		if (node->is_local)
		{
			SpiRun(sql);
			return NULL;
		}
		return remote::QueryOnServer(node->serverid, sql);
	}
	remote::NodeSession *session = remote::OpenNodeSession(node);
	if (how == RunAs::kOwnTransaction)
		return remote::NodeSessionQuery(session, sql);
	char *value = NULL;
	return remote::NodeSessionTry(session, sql, &value) ? value : NULL;
}

/* What a failed online move left on node: its marked copies of the group's shard tables, dropped. */
void
RepairNode(const Node *node, List *group, RunAs how)
{
	StringInfoData names;
	initStringInfo(&names);
	ListCell *cell;
	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		appendStringInfo(&names, "%s(%s, %s)", names.len > 0 ? ", " : "", quote_literal_cstr(shard->schema),
		                 quote_literal_cstr(shard->name));
	}
	const char *find = psprintf(
	    "SELECT pg_catalog.string_agg(pg_catalog.format('%%I.%%I', n.nspname, c.relname), ', ') FROM "
	    "pg_catalog.pg_class "
	    "c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND NOT c.relispartition "
	    "AND pg_catalog.obj_description(c.oid, 'pg_class') = %s AND (n.nspname::pg_catalog.text, "
	    "c.relname::pg_catalog.text) IN (VALUES %s)",
	    quote_literal_cstr(kCopyComment), names.data);
	char *copies = how == RunAs::kCallerTransaction ? QueryOnNode(node, find) : RunOnNode(node, find, how);
	if (copies != NULL)
		RunOnNode(node, psprintf("DROP TABLE %s", copies), how);
}

/* Replication objects and table copies a failed online move of the group left on the nodes of this one. */
void
RepairLeftovers(List *group, const Node *source, const Node *target, MoveReplication *replication, bool online)
{
	if (ReplicationLeftOver(replication))
		DropReplication(replication, false);
	if (!target->is_local)
		RepairNode(target, group, online ? RunAs::kOwnTransaction : RunAs::kCallerTransaction);
}

/*
 * The target worker's empty shard tables, committed there so the subscription can fill them: the
 * table's columns and CHECK constraints, keys, plain indexes and shard foreign keys, each marked
 * with kCopyComment until the switch; and the replication's marker table.
 */
void
MakeTargetTables(List *group, MoveReplication *replication)
{
	StringInfoData sql;
	initStringInfo(&sql);
	ListCell *cell;
	List *schemas = NIL;
	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		const char *rel = ShardRel(*shard);
		if (!list_member_oid(schemas, get_rel_namespace(shard->logical_relid)) &&
		    remote::NodeSessionQuery(replication->target_session,
		                             psprintf("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s",
		                                      quote_literal_cstr(shard->schema))) == NULL)
			appendStringInfo(&sql, "CREATE SCHEMA IF NOT EXISTS %s; ", quote_identifier(shard->schema));
		schemas = lappend_oid(schemas, get_rel_namespace(shard->logical_relid));
		appendStringInfo(&sql, "%s; ", remote::ShardTableDefinition(shard->logical_relid, shard->schema, shard->name));
		ReadPlainIndexes(*shard);
		appendStringInfo(&sql, "COMMENT ON TABLE %s IS %s; ", rel, quote_literal_cstr(kCopyComment));
		ListCell *key;
		foreach (key, shard->keys)
			appendStringInfo(&sql, "%s; ", (const char *) lfirst(key));
		foreach (key, shard->plain_indexes)
			appendStringInfo(&sql, "%s; ", (const char *) lfirst(key));
	}
	foreach (cell, group)
	{
		ListCell *key;
		foreach (key, ((MovedShard *) lfirst(cell))->foreign_keys)
			appendStringInfo(&sql, "%s; ", (const char *) lfirst(key));
	}
	appendStringInfo(&sql, "CREATE TABLE %s (n int)", replication->marker);
	remote::NodeSessionQuery(replication->target_session, sql.data);
}

/* What an online move did so far, read by its error cleanup (palloc'd: survives the longjmp). */
struct OnlineState
{
	bool switching; /* the switch's DDL began in the caller's transaction: its rollback undoes it */
	TimestampTz stall_start;
	uint64 rows;
};

/*
 * The online move: target tables and replication set up and committed on their nodes, the rows
 * copied and the changes caught up while writes go on; then writes wait (EXCLUSIVE locks) while
 * the target applies the last changes and the partitions, catalog and old tables switch.
 */
void
MoveOnline(List *group, const Node *source, const Node *target, MoveReplication *replication, OnlineState *state)
{
	operations::SetMovePhase("starting", NULL);
	MakeTargetTables(group, replication);
	StartReplication(replication);

	operations::SetMovePhase("copying", NULL);
	state->rows = WaitForInitialCopy(replication);

	/* Rounds until one is short: what is left to apply once writes wait is then little. */
	operations::SetMovePhase("catching up", NULL);
	for (int round = 0; round < 20; round++)
		if (WaitForCatchUp(replication) < 100)
			break;

	operations::SetMovePhase("switching", NULL);
	state->stall_start = GetCurrentTimestamp();
	ListCell *cell;
	foreach (cell, group)
		LockRelationOid(((MovedShard *) lfirst(cell))->logical_relid, ExclusiveLock);
	TimestampTz locked = GetCurrentTimestamp();
	WaitForPreparedOnSource(replication);
	long caught_up = WaitForCatchUp(replication);
	TimestampTz dropping = GetCurrentTimestamp();
	DropReplication(replication, true);
	elog(DEBUG1, "fdwshard: online move switch: locks %ld ms, catching up %ld ms, replication dropped in %ld ms",
	     TimestampDifferenceMilliseconds(state->stall_start, locked), caught_up,
	     TimestampDifferenceMilliseconds(dropping, GetCurrentTimestamp()));

	state->switching = true;
	foreach (cell, group)
		remote::ExecuteOnServer(target->serverid,
		                        psprintf("COMMENT ON TABLE %s IS NULL", ShardRel(*(MovedShard *) lfirst(cell))));
	SwitchToWorker(group, source, target);
}

/*
 * MoveOnline, and after a failure before its switch, what it made on the nodes undone (as far as
 * they answer: the next move of the group repairs the rest). A failure in the switch is undone by
 * the caller's rollback but the replication objects, which go first.
 */
void
MoveOnlineOrUndo(List *group, const Node *source, const Node *target, MoveReplication *replication, OnlineState *state)
{
	MemoryContext context = CurrentMemoryContext;
	ErrorContextCallback *saved_context_stack = error_context_stack;
	PG_TRY();
	{
		MoveOnline(group, source, target, replication, state);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		error_context_stack = saved_context_stack;
		ErrorData *edata = CopyErrorData();
		FlushErrorState();
		DropReplication(replication, false);
		if (!state->switching)
			RepairNode(target, group, RunAs::kOwnTransactionTolerant);
		remote::CloseNodeSessions();
		ReThrowError(edata);
	}
	PG_END_TRY();
	remote::CloseNodeSessions();
}

void
MoveShard(int64 shardid, int32 target_nodeid, const char *mode)
{
	if (strcmp(mode, "auto") != 0 && strcmp(mode, "block_writes") != 0 && strcmp(mode, "online") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid shard move mode \"%s\"", mode),
		                errhint("Valid modes are 'auto', 'block_writes' and 'online'.")));

	/* The rows are read under a snapshot taken once writes are locked out: one taken earlier could miss some. */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR, (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
		                errmsg("fdwshard_move_shard cannot run in a %s transaction",
		                       IsolationIsSerializable() ? "SERIALIZABLE" : "REPEATABLE READ"),
		                errhint("Move shards in a READ COMMITTED transaction (the default).")));

	SPI_connect();
	int32 colocationid;
	int32 shard_index;
	int32 source_nodeid;
	List *group = LoadGroup(shardid, &colocationid, &shard_index, &source_nodeid);
	Node *target = TargetNode(target_nodeid, source_nodeid, shardid);
	Node *source = ReadNode(source_nodeid, false);
	for (const Node *node : {source, target})
		if (!node->is_local)
		{
			remote::RequireServerUsage(node->serverid);
			remote::RequireUserMapping(node->serverid);
		}

	bool online =
	    strcmp(mode, "block_writes") != 0 && CanMoveOnline(group, source, target, strcmp(mode, "online") == 0);
	ListCell *cell;
	int64 group_shardid = shardid;
	List *tables = NIL;
	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		group_shardid = Min(group_shardid, shard->shardid);
		tables = lappend(tables, (void *) ShardRel(*shard));
		/* block_writes: reads go on; writes wait until the move commits or fails. */
		if (!online)
			LockRelationOid(shard->logical_relid, ExclusiveLock);
	}

	TimestampTz start = GetCurrentTimestamp();
	operations::BeginMoveProgress(shardid, list_length(group), source_nodeid, target_nodeid);
	MoveReplication *replication =
	    PrepareReplication(group_shardid, source, target, tables, ((MovedShard *) linitial(group))->schema);
	RepairLeftovers(group, source, target, replication, online);
	foreach (cell, group)
		ReadShardKeys(*(MovedShard *) lfirst(cell), source);
	uint64 rows = 0;
	OnlineState *state = (OnlineState *) palloc0(sizeof(OnlineState));
	if (online)
	{
		MoveOnlineOrUndo(group, source, target, replication, state);
		rows = state->rows;
		start = state->stall_start;
	}
	else if (target->is_local)
		MoveToCoordinator(group, source, target, shard_index);
	else
		MoveToWorker(group, source, target, shard_index);

	foreach (cell, group)
	{
		MovedShard *shard = (MovedShard *) lfirst(cell);
		rows += shard->rows;
		CacheInvalidateRelcacheByRelid(shard->logical_relid);
	}
	long seconds;
	int microseconds;
	TimestampDifference(start, GetCurrentTimestamp(), &seconds, &microseconds);
	ereport(NOTICE, (errmsg("moved shard " INT64_FORMAT " and its co-located shards (%d shards, " UINT64_FORMAT
	                        " rows) from node %d to node %d",
	                        shardid, list_length(group), rows, source_nodeid, target_nodeid),
	                 online ? errdetail("Online: writes to their tables waited %ld.%03d s, for the switch.", seconds,
	                                    microseconds / 1000)
	                        : errdetail("Writes to their tables waited %ld.%03d s.", seconds, microseconds / 1000)));
	SPI_finish();
}

} // namespace

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_move_shard);

	/* fdwshard_move_shard(shard_id bigint, target_node int, mode text) */
	Datum fdwshard_move_shard(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    for (int i = 0; i < 3; i++)
				    if (PG_ARGISNULL(i))
					    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					                    errmsg("arguments of fdwshard_move_shard must not be NULL")));
			    fdwshard::commands::WithoutPropagation(
			        [&]() {
				        fdwshard::MoveShard(PG_GETARG_INT64(0), PG_GETARG_INT32(1),
				                            text_to_cstring(PG_GETARG_TEXT_PP(2)));
			        });
			    PG_RETURN_VOID();
		    });
	}
}
