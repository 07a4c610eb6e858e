/*
 * undistribute_table: brings every row of a distributed table back into one ordinary local table
 * with the same name, columns, defaults, constraints, keys, indexes, owner, grants and views, and
 * removes the shards on every node, all in the caller's transaction.
 */
#include "fdwshard/catalog/spi.h"
#include "fdwshard/commands/shard_ddl.h"
#include "fdwshard/commands/shard_keys.h"
#include "fdwshard/guard.h"
#include "fdwshard/operations/dependent_views.h"
#include "fdwshard/operations/table_lock.h"
#include "fdwshard/operations/table_properties.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard
{

namespace
{

using namespace catalog;
using commands::DistributedTable;
using commands::Shard;
using remote::QualifiedName;

/* The text after "<prefix>" in definition, or an error when the definition has another shape. */
const char *
AfterPrefix(const char *definition, const char *prefix)
{
	if (strncmp(definition, prefix, strlen(prefix)) != 0)
		elog(ERROR, "fdwshard: unexpected definition: %s", definition);
	return definition + strlen(prefix);
}

/* Statements that recreate the shard keys on the new table, read from the first shard. */
List *
ShardKeyStatements(DistributedTable *table, const char *rel)
{
	Shard *shard = (Shard *) linitial(table->shards);
	const char *shard_rel = commands::ShardRelName(table, shard);
	List *statements = NIL;

	uint64 count = SpiRun("SELECT name, kind::text FROM fdwshard.shard_key WHERE logicalrelid = $1 "
	                      "ORDER BY kind <> 'p', name",
	                      {OidArg(table->relid)});
	SPITupleTable *keys = SPI_tuptable;
	for (uint64 row = 0; row < count; row++)
	{
		SPI_tuptable = keys;
		char *name = SpiText(row, 1);
		char kind = SpiText(row, 2)[0];
		char *shard_key = remote::NameWithSuffix(name, shard->shardid);

		if (kind == 'i')
		{
			char *definition = commands::QueryOnShardNode(
			    shard, psprintf("SELECT pg_get_indexdef(%s::regclass)",
			                    quote_literal_cstr(QualifiedName(table->schema, shard_key))));
			const char *prefix = psprintf("CREATE UNIQUE INDEX %s ON %s ", quote_identifier(shard_key), shard_rel);
			statements = lappend(statements, psprintf("CREATE UNIQUE INDEX %s ON %s %s", quote_identifier(name), rel,
			                                          AfterPrefix(definition, prefix)));
		}
		else
		{
			char *definition = commands::QueryOnShardNode(
			    shard, psprintf("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
			                    "AND conname = %s",
			                    quote_literal_cstr(shard_rel), quote_literal_cstr(shard_key)));
			if (definition == NULL)
				elog(ERROR, "fdwshard: constraint \"%s\" is missing on shard \"%s\"", shard_key, shard->name);
			statements = lappend(
			    statements, psprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", rel, quote_identifier(name), definition));
		}
	}
	return statements;
}

void
UndistributeTable(Oid relid)
{
	SPI_connect();

	LockTableToReplace(relid, false);
	Relation rel = table_open(relid, NoLock);
	Oid owner = rel->rd_rel->relowner;
	table_close(rel, NoLock);

	DistributedTable *table = commands::LoadDistributedTable(relid);
	if (table == NULL)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("table \"%s\" is not distributed", get_rel_name(relid))));
	commands::RequireShardAccess(table);
	if (SpiRun("SELECT k.name, c.relname FROM fdwshard.shard_key k JOIN pg_class c ON c.oid = k.logicalrelid "
	           "WHERE k.kind = 'f' AND (k.logicalrelid = $1 OR k.referenced = $1) ORDER BY 1 LIMIT 1",
	           {OidArg(relid)}) > 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot undistribute table \"%s\" because of foreign key \"%s\" on table \"%s\"",
		                       table->name, SpiText(0, 1), SpiText(0, 2)),
		                errhint("Drop the foreign key first; create it again once both tables are alike.")));

	const char *table_rel = QualifiedName(table->schema, table->name);
	ListCell *cell;
	Oid namespace_oid = get_rel_namespace(relid);

	/* Everything the new table needs, read before the old one steps aside. */
	List *indexes = NIL; /* CREATE INDEX statements */
	int nest_level = remote::BeginQualifiedDeparse();
	uint64 count = SpiRun("SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
	                      "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1 ORDER BY 1",
	                      {OidArg(relid)});
	remote::EndQualifiedDeparse(nest_level);
	for (uint64 row = 0; row < count; row++)
	{
		char *name = SpiText(row, 1);
		indexes = lappend(indexes, psprintf("CREATE INDEX %s ON %s %s", quote_identifier(name), table_rel,
		                                    AfterPrefix(SpiText(row, 2), psprintf("CREATE INDEX %s ON ONLY %s ",
		                                                                          quote_identifier(name), table_rel))));
	}
	List *keys = ShardKeyStatements(table, table_rel);
	List *placeholders = commands::CheckConstraintNames(relid, true);

	TableProperties properties = ReadTableProperties(relid, table_rel);
	List *views = SaveAndDropDependentViews(relid, table->name);

	/* The distributed table steps aside; a plain table of the same shape takes its name and rows. */
	char *old_name = psprintf("fdwshard_old_%u", relid);
	const char *old_rel = QualifiedName(table->schema, old_name);
	SpiRun(psprintf("ALTER TABLE %s RENAME TO %s", table_rel, quote_identifier(old_name)));
	SpiRun(psprintf("CREATE TABLE %s (LIKE %s INCLUDING COMMENTS INCLUDING COMPRESSION INCLUDING CONSTRAINTS "
	                "INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STATISTICS INCLUDING STORAGE)",
	                table_rel, old_rel));
	Oid new_relid = get_relname_relid(table->name, namespace_oid);
	/* LIKE copied the keys' placeholders: the keys themselves take their names. */
	foreach (cell, placeholders)
		SpiRun(psprintf("ALTER TABLE %s DROP CONSTRAINT %s", table_rel, quote_identifier((char *) lfirst(cell))));
	if (owner != GetUserId())
		SpiRun(psprintf("ALTER TABLE %s OWNER TO %s", table_rel, quote_identifier(GetUserNameFromId(owner, false))));
	foreach (cell, properties.owned_sequences)
		SpiRun((const char *) lfirst(cell));

	char *columns = remote::InsertableColumnList(new_relid);
	SpiRun(psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s", table_rel, columns, columns,
	                old_rel));
	elog(DEBUG1, "fdwshard: moved " UINT64_FORMAT " rows of \"%s\" out of %d shards", SPI_processed, table->name,
	     list_length(table->shards));

	/* Identity columns got new sequences: carry the old ones' positions and names over. */
	List *renames = CarryOverIdentitySequences(properties, old_rel, table_rel);

	/* The drop event trigger removes the shards on every node and the catalog rows. */
	SpiRun(psprintf("DROP TABLE %s", old_rel));
	foreach (cell, renames)
		SpiRun((const char *) lfirst(cell));
	foreach (cell, keys)
		SpiRun((const char *) lfirst(cell));
	foreach (cell, indexes)
		SpiRun((const char *) lfirst(cell));
	RestoreGrantsAndComment(properties, table_rel);
	RestoreDependentViews(views);

	SPI_finish();
	CacheInvalidateRelcacheByRelid(new_relid);
}

} // namespace

} // namespace fdwshard

extern "C"
{
	PG_FUNCTION_INFO_V1(undistribute_table);

	/* undistribute_table(table_name regclass) */
	Datum undistribute_table(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    Oid relid = PG_GETARG_OID(0);
			    /*
			     * search_path = pg_catalog throughout: definitions read here are fully qualified, and
			     * those read from a worker (deparsed there under pg_catalog) mean here what they meant there.
			     */
			    int nest_level = fdwshard::remote::BeginQualifiedDeparse();
			    fdwshard::commands::WithoutPropagation([&]() { fdwshard::UndistributeTable(relid); });
			    fdwshard::remote::EndQualifiedDeparse(nest_level);
			    PG_RETURN_VOID();
		    });
	}
}
