/*
 * Shard keys: PRIMARY KEY, UNIQUE constraints, unique indexes and foreign keys of distributed tables.
 * None can live on the partitioned table (its partition key is an expression and foreign partitions
 * have no indexes), so each shard carries its own <name>_<shardid>, recorded in fdwshard.shard_key.
 * A key must include the distribution column: then shard-by-shard uniqueness is table-wide.
 * PRIMARY KEY and UNIQUE keys also have a placeholder on the table, for ON CONFLICT ON CONSTRAINT
 * (see commands/shard_keys.h).
 */
#include "fdwshard/commands/shard_keys.h"

#include "fdwshard/catalog/spi.h"
#include "fdwshard/commands/utility_hook.h"
#include "fdwshard/guard.h"
#include "fdwshard/remote/deparse.h"

namespace fdwshard::commands
{

namespace
{

const char *
NameList(List *names)
{
	StringInfoData text;
	ListCell *cell;

	initStringInfo(&text);
	foreach (cell, names)
		appendStringInfo(&text, "%s%s", text.len > 0 ? ", " : "", quote_identifier(strVal(lfirst(cell))));
	return text.data;
}

/* Column names joined by "_", as PostgreSQL names keys after their columns. */
const char *
NamePart(List *names)
{
	StringInfoData text;
	ListCell *cell;

	initStringInfo(&text);
	foreach (cell, names)
		appendStringInfo(&text, "%s%s", text.len > 0 ? "_" : "", strVal(lfirst(cell)));
	return text.data;
}

const char *
Options(List *options)
{
	StringInfoData text;
	ListCell *cell;

	if (options == NIL)
		return "";
	initStringInfo(&text);
	foreach (cell, options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		appendStringInfo(&text, "%s%s = %s", text.len > 0 ? ", " : " WITH (", quote_identifier(option->defname),
		                 option->arg != NULL ? quote_literal_cstr(defGetString(option)) : "true");
	}
	appendStringInfoChar(&text, ')');
	return text.data;
}

const char *
Deferrable(bool deferrable, bool initdeferred)
{
	return psprintf("%s%s", deferrable ? " DEFERRABLE" : "", initdeferred ? " INITIALLY DEFERRED" : "");
}

void
RequireDistributionColumn(DistributedTable *table, const char *key_name, bool found)
{
	if (!found)
		ereport(ERROR,
		        (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
		         errmsg("cannot create %s on distributed table \"%s\": it does not include distribution column \"%s\"",
		                key_name, table->name, table->column),
		         errhint("Uniqueness is enforced shard by shard, so a primary key or unique constraint must include "
		                 "the distribution column: add \"%s\" to it.",
		                 table->column)));
}

void
CheckNewKeyName(DistributedTable *table, const char *name, char kind)
{
	if (ShardKeyKind(table->relid, name) != '\0')
	{
		if (kind == 'i')
			ereport(ERROR, (errcode(ERRCODE_DUPLICATE_TABLE), errmsg("relation \"%s\" already exists", name)));
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
		                errmsg("constraint \"%s\" for relation \"%s\" already exists", name, table->name)));
	}
	if (kind == 'p')
	{
		SPI_connect();
		bool exists = catalog::SpiRun("SELECT 1 FROM fdwshard.shard_key WHERE logicalrelid = $1 AND kind = 'p'",
		                              {catalog::OidArg(table->relid)}) > 0;
		SPI_finish();
		if (exists)
			ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
			                errmsg("multiple primary keys for table \"%s\" are not allowed", table->name)));
	}
}

void
RecordShardKey(DistributedTable *table, const char *name, char kind, Oid referenced)
{
	char kind_text[2] = {kind, '\0'};

	SPI_connect();
	catalog::CatalogWrite(
	    "INSERT INTO fdwshard.shard_key (logicalrelid, name, kind, referenced) VALUES ($1, $2, $3, $4)",
	    {catalog::OidArg(table->relid), catalog::TextArg(name), catalog::TextArg(kind_text),
	     OidIsValid(referenced) ? catalog::OidArg(referenced) : catalog::TextArg(NULL)});
	SPI_finish();
	InvalidateDistributedTable(table->relid);
}

/* "ALTER TABLE shard ADD CONSTRAINT name_<shardid> <definition>" on every shard. */
void
AddConstraintOnShards(DistributedTable *table, const char *name, const char *definition)
{
	ListCell *cell;
	foreach (cell, table->shards)
	{
		Shard *shard = (Shard *) lfirst(cell);
		RunOnShardNode(shard, psprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", ShardRelName(table, shard),
		                               quote_identifier(remote::NameWithSuffix(name, shard->shardid)), definition));
	}
}

/* Columns, in key order, of the constraint of the shard that condition (on pg_constraint c) selects. */
List *
KeyColumnsOnShard(DistributedTable *table, Shard *shard, const char *condition)
{
	char *columns =
	    QueryOnShardNode(shard, psprintf("SELECT string_agg(a.attname, E'\\x1f' ORDER BY k.n) FROM pg_constraint c "
	                                     "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY k(attnum, n) "
	                                     "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
	                                     "WHERE c.conrelid = %s::regclass AND %s",
	                                     quote_literal_cstr(ShardRelName(table, shard)), condition));
	List *names = NIL;

	for (char *next = columns; next != NULL;)
	{
		char *end = strchr(next, '\x1f');
		if (end != NULL)
			*end = '\0';
		names = lappend(names, makeString(pstrdup(next)));
		next = end != NULL ? end + 1 : NULL;
	}
	return names;
}

/* Columns of the referenced table's primary key, for REFERENCES t without a column list. */
List *
PrimaryKeyColumns(DistributedTable *table)
{
	List *names = KeyColumnsOnShard(table, (Shard *) linitial(table->shards), "c.contype = 'p'");

	if (names == NIL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_FOREIGN_KEY),
		                errmsg("there is no primary key for referenced table \"%s\"", table->name)));
	return names;
}

const char *
ForeignKeyActionText(char action)
{
	switch (action)
	{
		case FKCONSTR_ACTION_RESTRICT:
			return "RESTRICT";
		case FKCONSTR_ACTION_CASCADE:
			return "CASCADE";
		case FKCONSTR_ACTION_SETNULL:
			return "SET NULL";
		case FKCONSTR_ACTION_SETDEFAULT:
			return "SET DEFAULT";
		default:
			return "NO ACTION";
	}
}

/* Does the shard key name still exist on the table's first shard? */
bool
ShardKeyExists(DistributedTable *table, const char *name, char kind)
{
	Shard *shard = (Shard *) linitial(table->shards);
	const char *shard_name = remote::NameWithSuffix(name, shard->shardid);
	const char *sql =
	    kind == 'i' ? psprintf("SELECT 1 FROM pg_class WHERE relname = %s AND relnamespace = %s::regnamespace",
	                           quote_literal_cstr(shard_name), quote_literal_cstr(quote_identifier(table->schema)))
	                : psprintf("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
	                           quote_literal_cstr(ShardRelName(table, shard)), quote_literal_cstr(shard_name));
	return QueryOnShardNode(shard, sql) != NULL;
}

/* pg_catalog.fdwshard_shard_key(VARIADIC "any"), or InvalidOid before ALTER EXTENSION fdwshard UPDATE to 0.3. */
Oid
ShardKeyFunctionOid()
{
	Oid argtypes[1] = {ANYOID};
	return LookupFuncName(list_make2(makeString(pstrdup("pg_catalog")), makeString(pstrdup("fdwshard_shard_key"))), 1,
	                      argtypes, true);
}

/* The placeholder of the table's key name, or InvalidOid. */
Oid
PlaceholderOid(const DistributedTable *table, const char *name)
{
	Oid constraint_oid = get_relation_constraint_oid(table->relid, name, true);
	return OidIsValid(constraint_oid) && IsShardKeyPlaceholder(constraint_oid) ? constraint_oid : InvalidOid;
}

/* The key's columns and, from them, its placeholder when it has none (ALTER EXTENSION fdwshard UPDATE). */
void
AddMissingPlaceholder(DistributedTable *table, const char *name)
{
	if (OidIsValid(get_relation_constraint_oid(table->relid, name, true)))
	{
		if (!OidIsValid(PlaceholderOid(table, name)))
			ereport(WARNING, (errmsg("ON CONFLICT ON CONSTRAINT %s cannot be used on distributed table \"%s\"",
			                         quote_identifier(name), table->name),
			                  errdetail("A CHECK constraint of the table has the name of the key."),
			                  errhint("Rename the CHECK constraint, then drop the key and add it again.")));
		return;
	}
	/* A local shard if there is one: no round trip. */
	Shard *shard = (Shard *) linitial(table->shards);
	ListCell *cell;
	foreach (cell, table->shards)
		if (((Shard *) lfirst(cell))->is_local)
		{
			shard = (Shard *) lfirst(cell);
			break;
		}
	List *columns = KeyColumnsOnShard(
	    table, shard, psprintf("c.conname = %s", quote_literal_cstr(remote::NameWithSuffix(name, shard->shardid))));
	if (columns == NIL)
		elog(ERROR, "fdwshard: constraint \"%s\" is missing on shard \"%s\"",
		     remote::NameWithSuffix(name, shard->shardid), shard->name);
	AddShardKeyPlaceholder(remote::QualifiedName(table->schema, table->name), name, columns);
}

} // namespace

bool
IsShardKeyPlaceholder(Oid constraint_oid)
{
	HeapTuple tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(constraint_oid));
	if (!HeapTupleIsValid(tuple))
		return false;

	bool placeholder = false;
	if (((Form_pg_constraint) GETSTRUCT(tuple))->contype == CONSTRAINT_CHECK)
	{
		bool is_null;
		Datum bin = SysCacheGetAttr(CONSTROID, tuple, Anum_pg_constraint_conbin, &is_null);
		Node *expr = is_null ? NULL : (Node *) stringToNode(TextDatumGetCString(bin));
		Oid function = ShardKeyFunctionOid();
		placeholder =
		    expr != NULL && IsA(expr, FuncExpr) && OidIsValid(function) && ((FuncExpr *) expr)->funcid == function;
	}
	ReleaseSysCache(tuple);
	return placeholder;
}

List *
CheckConstraintNames(Oid relid, bool placeholders)
{
	List *names = NIL;
	ListCell *cell;
	foreach (cell, LocalTexts("SELECT oid::text FROM pg_constraint WHERE conrelid = $1 AND contype = 'c' "
	                          "ORDER BY conname",
	                          relid))
	{
		Oid constraint_oid = (Oid) strtoul((const char *) lfirst(cell), NULL, 10);
		if (IsShardKeyPlaceholder(constraint_oid) == placeholders)
			names = lappend(names, get_constraint_name(constraint_oid));
	}
	return names;
}

void
AddShardKeyPlaceholder(const char *qualified_table, const char *name, List *columns)
{
	if (!OidIsValid(ShardKeyFunctionOid()))
		return; /* the extension's SQL is still 0.2: ALTER EXTENSION fdwshard UPDATE adds it */
	RunLocal(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (pg_catalog.fdwshard_shard_key(%s))", qualified_table,
	                  quote_identifier(name), NameList(columns)));
}

char
ShardKeyKind(Oid relid, const char *name)
{
	char kind = '\0';

	SPI_connect();
	if (catalog::SpiRun("SELECT kind::text FROM fdwshard.shard_key WHERE logicalrelid = $1 AND name = $2",
	                    {catalog::OidArg(relid), catalog::TextArg(name)}) > 0)
		kind = catalog::SpiText(0, 1)[0];
	SPI_finish();
	return kind;
}

void
AddShardKeyConstraint(DistributedTable *table, Constraint *constraint)
{
	bool primary = constraint->contype == CONSTR_PRIMARY;
	const char *key_name = primary ? "PRIMARY KEY" : "UNIQUE constraint";

	if (constraint->indexname != NULL)
		RefuseUnsupported(psprintf("%s ... USING INDEX", key_name), table->name);

	bool found = false;
	ListCell *cell;
	foreach (cell, constraint->keys)
		found |= strcmp(strVal(lfirst(cell)), table->column) == 0;
	RequireDistributionColumn(table, key_name, found);

	Oid namespace_oid = get_rel_namespace(table->relid);
	const char *name = constraint->conname != NULL ? constraint->conname
	                   : primary
	                       ? ChooseConstraintName(table->name, NULL, "pkey", namespace_oid, NIL)
	                       : ChooseConstraintName(table->name, NamePart(constraint->keys), "key", namespace_oid, NIL);
	CheckNewKeyName(table, name, primary ? 'p' : 'u');
	AddShardKeyPlaceholder(remote::QualifiedName(table->schema, table->name), name, constraint->keys);

	char *definition =
	    psprintf("%s%s (%s)%s%s%s", primary ? "PRIMARY KEY" : "UNIQUE",
	             constraint->nulls_not_distinct ? " NULLS NOT DISTINCT" : "", NameList(constraint->keys),
	             constraint->including != NIL ? psprintf(" INCLUDE (%s)", NameList(constraint->including)) : "",
	             Options(constraint->options), Deferrable(constraint->deferrable, constraint->initdeferred));

	/* As for a plain table, the key's columns become NOT NULL (on the partitioned table too). */
	if (primary)
		foreach (cell, constraint->keys)
			RunLocal(psprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
			                  remote::QualifiedName(table->schema, table->name),
			                  quote_identifier(strVal(lfirst(cell)))));
	AddConstraintOnShards(table, name, definition);
	RecordShardKey(table, name, primary ? 'p' : 'u', InvalidOid);
}

void
AddShardUniqueIndex(DistributedTable *table, IndexStmt *stmt)
{
	Oid namespace_oid = get_rel_namespace(table->relid);
	List *columns = NIL;
	bool found = false;
	ListCell *cell;

	stmt = transformIndexStmt(table->relid, (IndexStmt *) copyObject(stmt), NULL);
	foreach (cell, stmt->indexParams)
	{
		IndexElem *elem = (IndexElem *) lfirst(cell);
		if (elem->name != NULL)
		{
			found |= strcmp(elem->name, table->column) == 0;
			columns = lappend(columns, makeString(elem->name));
		}
		else
			columns = lappend(columns, makeString(pstrdup("expr")));
	}
	RequireDistributionColumn(table, "unique index", found);

	const char *name = stmt->idxname != NULL
	                       ? stmt->idxname
	                       : ChooseRelationName(table->name, NamePart(columns), "idx", namespace_oid, false);
	if (stmt->if_not_exists && ShardKeyKind(table->relid, name) != '\0')
	{
		ereport(NOTICE, (errmsg("relation \"%s\" already exists, skipping", name)));
		return;
	}
	CheckNewKeyName(table, name, 'i');

	/* The definition after "ON <table>", every name qualified. */
	int nest_level = remote::BeginQualifiedDeparse();
	List *context = deparse_context_for(table->name, table->relid);
	StringInfoData definition;
	initStringInfo(&definition);
	appendStringInfo(&definition, "USING %s (", quote_identifier(stmt->accessMethod));
	foreach (cell, stmt->indexParams)
	{
		IndexElem *elem = (IndexElem *) lfirst(cell);

		if (cell != list_head(stmt->indexParams))
			appendStringInfoString(&definition, ", ");
		if (elem->name != NULL)
			appendStringInfoString(&definition, quote_identifier(elem->name));
		else
			appendStringInfo(&definition, "(%s)", deparse_expression(elem->expr, context, false, false));
		if (elem->collation != NIL)
			appendStringInfo(&definition, " COLLATE %s", NameListToQuotedString(elem->collation));
		if (elem->opclass != NIL)
			appendStringInfo(&definition, " %s", NameListToQuotedString(elem->opclass));
		if (elem->ordering == SORTBY_DESC)
			appendStringInfoString(&definition, " DESC");
		if (elem->nulls_ordering == SORTBY_NULLS_FIRST)
			appendStringInfoString(&definition, " NULLS FIRST");
		else if (elem->nulls_ordering == SORTBY_NULLS_LAST)
			appendStringInfoString(&definition, " NULLS LAST");
	}
	appendStringInfoChar(&definition, ')');
	if (stmt->indexIncludingParams != NIL)
	{
		List *included = NIL;
		foreach (cell, stmt->indexIncludingParams)
			included = lappend(included, makeString(((IndexElem *) lfirst(cell))->name));
		appendStringInfo(&definition, " INCLUDE (%s)", NameList(included));
	}
	if (stmt->nulls_not_distinct)
		appendStringInfoString(&definition, " NULLS NOT DISTINCT");
	appendStringInfoString(&definition, Options(stmt->options));
	if (stmt->whereClause != NULL)
		appendStringInfo(&definition, " WHERE %s", deparse_expression(stmt->whereClause, context, false, false));
	remote::EndQualifiedDeparse(nest_level);

	foreach (cell, table->shards)
	{
		Shard *shard = (Shard *) lfirst(cell);
		RunOnShardNode(shard, psprintf("CREATE UNIQUE INDEX %s ON %s %s",
		                               quote_identifier(remote::NameWithSuffix(name, shard->shardid)),
		                               ShardRelName(table, shard), definition.data));
	}
	RecordShardKey(table, name, 'i', InvalidOid);
}

namespace
{

/*
 * PostgreSQL's check for a foreign key (checkFkeyPermissions, which does not run for shard keys):
 * REFERENCES on the referenced table, or on each referenced column.
 */
void
RequireReferencesPrivilege(Oid relid, List *columns)
{
	if (pg_class_aclcheck(relid, GetUserId(), ACL_REFERENCES) == ACLCHECK_OK)
		return;
	ListCell *cell;
	foreach (cell, columns)
	{
		AttrNumber attnum = get_attnum(relid, strVal(lfirst(cell)));
		AclResult result = attnum == InvalidAttrNumber
		                       ? ACLCHECK_NO_PRIV
		                       : pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_REFERENCES);
		if (result != ACLCHECK_OK)
			aclcheck_error(result, OBJECT_TABLE, get_rel_name(relid));
	}
}

} // namespace

void
AddShardForeignKey(DistributedTable *table, Constraint *constraint)
{
	Oid referenced_relid = RangeVarGetRelid(constraint->pktable, ShareRowExclusiveLock, false);
	DistributedTable *referenced = LoadDistributedTable(referenced_relid);

	if (referenced == NULL)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot create foreign key on distributed table \"%s\": referenced table \"%s\" is not "
		                       "distributed",
		                       table->name, constraint->pktable->relname),
		                errhint("Foreign keys are created shard to shard: distribute \"%s\" by the referenced column "
		                        "with colocate_with => '%s'.",
		                        constraint->pktable->relname, table->name)));
	if (referenced->colocationid != table->colocationid)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("cannot create foreign key from \"%s\" to \"%s\": the tables are not co-located",
		                       table->name, referenced->name),
		                errhint("Foreign keys are created shard to shard: distribute both tables with the same shard "
		                        "count and colocate_with.")));
	List *referenced_columns = constraint->pk_attrs != NIL ? constraint->pk_attrs : PrimaryKeyColumns(referenced);
	if (list_length(referenced_columns) != list_length(constraint->fk_attrs))
		ereport(ERROR, (errcode(ERRCODE_INVALID_FOREIGN_KEY),
		                errmsg("number of referencing and referenced columns for foreign key disagree")));
	bool paired = false;
	for (int i = 0; i < list_length(referenced_columns); i++)
		paired |= strcmp(strVal(list_nth(constraint->fk_attrs, i)), table->column) == 0 &&
		          strcmp(strVal(list_nth(referenced_columns, i)), referenced->column) == 0;
	if (!paired)
		ereport(ERROR,
		        (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		         errmsg("cannot create foreign key from \"%s\" to \"%s\": it does not pair distribution columns "
		                "\"%s\" and \"%s\"",
		                table->name, referenced->name, table->column, referenced->column),
		         errhint("A foreign key between distributed tables must reference the distribution column with the "
		                 "distribution column, so that each row and the row it references are in the same shard.")));
	if (constraint->fk_del_set_cols != NIL)
		RefuseUnsupported("ON DELETE SET NULL/DEFAULT (columns)", table->name);
	RequireReferencesPrivilege(referenced_relid, referenced_columns);

	const char *name = constraint->conname != NULL ? constraint->conname
	                                               : ChooseConstraintName(table->name, NamePart(constraint->fk_attrs),
	                                                                      "fkey", get_rel_namespace(table->relid), NIL);
	CheckNewKeyName(table, name, 'f');

	const char *match = constraint->fk_matchtype == FKCONSTR_MATCH_FULL ? " MATCH FULL" : "";
	ListCell *cell;
	foreach (cell, table->shards)
	{
		Shard *shard = (Shard *) lfirst(cell);
		Shard *referenced_shard = (Shard *) list_nth(referenced->shards, shard->shard_index);
		RunOnShardNode(
		    shard, psprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)%s "
		                    "ON DELETE %s ON UPDATE %s%s%s",
		                    ShardRelName(table, shard), quote_identifier(remote::NameWithSuffix(name, shard->shardid)),
		                    NameList(constraint->fk_attrs), ShardRelName(referenced, referenced_shard),
		                    NameList(referenced_columns), match, ForeignKeyActionText(constraint->fk_del_action),
		                    ForeignKeyActionText(constraint->fk_upd_action),
		                    Deferrable(constraint->deferrable, constraint->initdeferred),
		                    constraint->skip_validation ? " NOT VALID" : ""));
	}
	RecordShardKey(table, name, 'f', referenced_relid);
}

void
DropShardKey(DistributedTable *table, const char *name, DropBehavior behavior)
{
	char kind = ShardKeyKind(table->relid, name);
	ListCell *cell;

	if (OidIsValid(PlaceholderOid(table, name)))
		RunLocal(psprintf("ALTER TABLE %s DROP CONSTRAINT %s", remote::QualifiedName(table->schema, table->name),
		                  quote_identifier(name)));
	foreach (cell, table->shards)
	{
		Shard *shard = (Shard *) lfirst(cell);
		const char *shard_key = remote::NameWithSuffix(name, shard->shardid); /* not quoted yet */
		const char *cascade = behavior == DROP_CASCADE ? " CASCADE" : "";

		if (kind == 'i')
			RunOnShardNode(shard,
			               psprintf("DROP INDEX %s%s", remote::QualifiedName(table->schema, shard_key), cascade));
		else
			RunOnShardNode(shard, psprintf("ALTER TABLE %s DROP CONSTRAINT %s%s", ShardRelName(table, shard),
			                               quote_identifier(shard_key), cascade));
	}
	SPI_connect();
	catalog::CatalogWrite("DELETE FROM fdwshard.shard_key WHERE logicalrelid = $1 AND name = $2",
	                      {catalog::OidArg(table->relid), catalog::TextArg(name)});
	/* CASCADE may have taken foreign keys of other tables with it. */
	uint64 count = catalog::SpiRun("SELECT DISTINCT logicalrelid::oid FROM fdwshard.shard_key WHERE referenced = $1 "
	                               "AND logicalrelid <> referenced",
	                               {catalog::OidArg(table->relid)});
	List *referencing = NIL;
	for (uint64 row = 0; row < count; row++)
	{
		bool is_null;
		referencing = lappend_oid(referencing, DatumGetObjectId(catalog::SpiValue(row, 1, &is_null)));
	}
	SPI_finish();
	if (behavior == DROP_CASCADE)
		foreach (cell, referencing)
			ForgetVanishedShardKeys(LoadDistributedTable(lfirst_oid(cell)));
	InvalidateDistributedTable(table->relid);
}

void
RenameShardKey(DistributedTable *table, const char *name, const char *new_name)
{
	if (ShardKeyKind(table->relid, name) == 'i')
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
		                errmsg("constraint \"%s\" for table \"%s\" does not exist", name, table->name)));
	CheckNewKeyName(table, new_name, 'u');
	if (OidIsValid(PlaceholderOid(table, name)))
		RunLocal(psprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s",
		                  remote::QualifiedName(table->schema, table->name), quote_identifier(name),
		                  quote_identifier(new_name)));
	ListCell *cell;
	foreach (cell, table->shards)
	{
		Shard *shard = (Shard *) lfirst(cell);
		RunOnShardNode(shard, psprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", ShardRelName(table, shard),
		                               quote_identifier(remote::NameWithSuffix(name, shard->shardid)),
		                               quote_identifier(remote::NameWithSuffix(new_name, shard->shardid))));
	}
	SPI_connect();
	catalog::CatalogWrite("UPDATE fdwshard.shard_key SET name = $3 WHERE logicalrelid = $1 AND name = $2",
	                      {catalog::OidArg(table->relid), catalog::TextArg(name), catalog::TextArg(new_name)});
	SPI_finish();
	InvalidateDistributedTable(table->relid);
}

void
ForgetVanishedShardKeys(DistributedTable *table)
{
	List *keys = LocalTexts("SELECT kind::text || name FROM fdwshard.shard_key WHERE logicalrelid = $1", table->relid);
	ListCell *cell;

	foreach (cell, keys)
	{
		const char *key = (const char *) lfirst(cell);
		if (ShardKeyExists(table, key + 1, key[0]))
			continue;
		/* Dropping an INCLUDE column drops the key, not its placeholder (only the key columns are in it). */
		if (OidIsValid(PlaceholderOid(table, key + 1)))
			RunLocal(psprintf("ALTER TABLE %s DROP CONSTRAINT %s", remote::QualifiedName(table->schema, table->name),
			                  quote_identifier(key + 1)));
		SPI_connect();
		catalog::CatalogWrite("DELETE FROM fdwshard.shard_key WHERE logicalrelid = $1 AND name = $2",
		                      {catalog::OidArg(table->relid), catalog::TextArg(key + 1)});
		SPI_finish();
	}
	InvalidateDistributedTable(table->relid);
}

namespace
{

/* The name and table of constraint constraint_oid. */
char *
ConstraintName(Oid constraint_oid, Oid *relid)
{
	HeapTuple tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(constraint_oid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for constraint %u", constraint_oid);
	Form_pg_constraint constraint = (Form_pg_constraint) GETSTRUCT(tuple);
	char *name = pstrdup(NameStr(constraint->conname));
	*relid = constraint->conrelid;
	ReleaseSysCache(tuple);
	return name;
}

} // namespace

List *
ConstraintColumns(Oid constraint_oid)
{
	HeapTuple tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(constraint_oid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for constraint %u", constraint_oid);
	Oid relid = ((Form_pg_constraint) GETSTRUCT(tuple))->conrelid;
	bool is_null;
	Datum key = SysCacheGetAttr(CONSTROID, tuple, Anum_pg_constraint_conkey, &is_null);
	Datum *attnums = NULL;
	int count = 0;
	if (!is_null)
		deconstruct_array(DatumGetArrayTypeP(key), INT2OID, sizeof(int16), true, TYPALIGN_SHORT, &attnums, NULL,
		                  &count);
	List *columns = NIL;
	for (int i = 0; i < count; i++)
		columns = lappend(columns, makeString(get_attname(relid, DatumGetInt16(attnums[i]), false)));
	ReleaseSysCache(tuple);
	return columns;
}

namespace
{

/*
 * The placeholder's columns (the key's) as the inference elements of "ON CONFLICT (columns)" of
 * query, whose target may be the distributed table or already one of its shards.
 */
List *
InferenceElements(Oid placeholder_oid, Query *query)
{
	Oid target_relid = rt_fetch(query->resultRelation, query->rtable)->relid;
	List *elements = NIL;
	ListCell *cell;
	/* By name: a shard has the same column names, maybe other numbers. */
	foreach (cell, ConstraintColumns(placeholder_oid))
	{
		AttrNumber attnum = get_attnum(target_relid, strVal(lfirst(cell)));
		if (attnum == InvalidAttrNumber)
			elog(ERROR, "fdwshard: a column of placeholder %u is missing on relation %u", placeholder_oid,
			     target_relid);
		Oid type;
		int32 typmod;
		Oid collation;
		get_atttypetypmodcoll(target_relid, attnum, &type, &typmod, &collation);

		InferenceElem *element = makeNode(InferenceElem);
		element->expr = (Node *) makeVar(query->resultRelation, attnum, type, typmod, collation, 0);
		element->infercollid = InvalidOid;  /* key constraints use the columns' collations... */
		element->inferopclass = InvalidOid; /* ...and default operator classes */
		elements = lappend(elements, element);
	}
	if (elements == NIL)
		elog(ERROR, "fdwshard: placeholder %u has no key columns", placeholder_oid);
	return elements;
}

} // namespace

void
PointArbiterAtShard(Query *shard_query, const catalog::CachedShard *shard)
{
	OnConflictExpr *on_conflict = shard_query->onConflict;
	if (shard_query->commandType != CMD_INSERT || on_conflict == NULL || !OidIsValid(on_conflict->constraint))
		return;

	Oid relid;
	char *name = ConstraintName(on_conflict->constraint, &relid);
	const catalog::CachedTable *table = catalog::LookupDistributedTable(relid);
	if (table == NULL)
		return; /* a plain table's constraint, or already the shard's own */
	/* No other constraint of a distributed table has an index: a CHECK constraint fails as on a plain table. */
	if (!catalog::HasConstraintKey(table, name) || !IsShardKeyPlaceholder(on_conflict->constraint))
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
		                errmsg("constraint in ON CONFLICT clause has no associated index")));

	char *shard_key = remote::NameWithSuffix(name, shard->shardid);
	if (!OidIsValid(shard->serverid))
	{
		Oid shard_constraint = get_relation_constraint_oid(shard->relid, shard_key, true);
		if (!OidIsValid(shard_constraint))
			elog(ERROR, "fdwshard: constraint \"%s\" is missing on shard \"%s\"", shard_key,
			     get_rel_name(shard->relid));
		on_conflict->constraint = shard_constraint;
		elog(DEBUG1, "fdwshard: ON CONFLICT ON CONSTRAINT %s is %s on shard %s", quote_identifier(name),
		     quote_identifier(shard_key), get_rel_name(shard->relid));
		return;
	}
	/*
	 * The deparsed statement names its arbiter by the OID's name on the coordinator, where the
	 * foreign shard has no key: the key's columns instead, which the worker infers to N_<shardid>.
	 */
	on_conflict->arbiterElems = InferenceElements(on_conflict->constraint, shard_query);
	on_conflict->arbiterWhere = NULL;
	on_conflict->constraint = InvalidOid;
	if (message_level_is_interesting(DEBUG1))
	{
		StringInfoData columns;
		initStringInfo(&columns);
		ListCell *cell;
		foreach (cell, on_conflict->arbiterElems)
		{
			Var *var = (Var *) ((InferenceElem *) lfirst(cell))->expr;
			Oid target_relid = rt_fetch(shard_query->resultRelation, shard_query->rtable)->relid;
			appendStringInfo(&columns, "%s%s", columns.len > 0 ? ", " : "",
			                 quote_identifier(get_attname(target_relid, var->varattno, false)));
		}
		elog(DEBUG1, "fdwshard: ON CONFLICT ON CONSTRAINT %s is ON CONFLICT (%s) on shard %s", quote_identifier(name),
		     columns.data, get_rel_name(shard->relid));
	}
}

void
RefuseUnroutedArbiter(Query *query)
{
	ListCell *cell;
	foreach (cell, query->cteList)
	{
		CommonTableExpr *cte = (CommonTableExpr *) lfirst(cell);
		if (IsA(cte->ctequery, Query))
			RefuseUnroutedArbiter((Query *) cte->ctequery);
	}
	if (query->commandType != CMD_INSERT || query->onConflict == NULL || !OidIsValid(query->onConflict->constraint))
		return;

	Oid relid;
	char *name = ConstraintName(query->onConflict->constraint, &relid);
	const catalog::CachedTable *table = catalog::LookupDistributedTable(relid);
	if (table == NULL || !catalog::HasConstraintKey(table, name))
		return; /* a CHECK constraint: PostgreSQL's own error follows */
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
	                errmsg("ON CONFLICT ON CONSTRAINT %s is not supported in this INSERT into distributed table \"%s\"",
	                       quote_identifier(name), get_rel_name(relid)),
	                errdetail("The key exists on each shard: an INSERT ... VALUES of one row, routed to the shard of "
	                          "its distribution column, uses it.")));
}

namespace
{

/* ALTER EXTENSION fdwshard UPDATE: every PRIMARY KEY and UNIQUE shard key without a placeholder gets one. */
void
AddMissingPlaceholders()
{
	List *keys = NIL; /* "<relid> <name>" of PRIMARY KEY and UNIQUE shard keys, in the caller's context */
	MemoryContext caller = CurrentMemoryContext;
	SPI_connect();
	uint64 count = catalog::SpiRun(
	    "SELECT logicalrelid::oid::text || ' ' || name FROM fdwshard.shard_key WHERE kind IN ('p', 'u') ORDER BY 1");
	for (uint64 row = 0; row < count; row++)
	{
		char *key = catalog::SpiText(row, 1);
		MemoryContext spi = MemoryContextSwitchTo(caller);
		keys = lappend(keys, pstrdup(key));
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();

	ListCell *cell;
	foreach (cell, keys)
	{
		char *key = (char *) lfirst(cell);
		char *name = strchr(key, ' ') + 1;
		DistributedTable *table = LoadDistributedTable((Oid) strtoul(key, NULL, 10));
		if (table != NULL)
			AddMissingPlaceholder(table, name);
	}
}

} // namespace

} // namespace fdwshard::commands

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_shard_key);
	PG_FUNCTION_INFO_V1(fdwshard_add_shard_key_placeholders);

	/* The placeholder's expression: always true (the key itself is enforced by each shard). */
	Datum fdwshard_shard_key(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry([&]() -> Datum { PG_RETURN_BOOL(true); });
	}

	/* ALTER EXTENSION fdwshard UPDATE to 0.3: placeholders for the keys of tables distributed before. */
	Datum fdwshard_add_shard_key_placeholders(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry(
		    [&]() -> Datum
		    {
			    fdwshard::commands::WithoutPropagation([&]() { fdwshard::commands::AddMissingPlaceholders(); });
			    PG_RETURN_VOID();
		    });
	}
}
