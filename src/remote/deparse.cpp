/* SQL text built from quoted names and literals (see remote/deparse.h). */
#include "fdwshard/remote/deparse.h"

#include "fdwshard/commands/shard_keys.h"

namespace fdwshard::remote
{

const char *
QualifiedName(const char *schema, const char *name)
{
	return quote_qualified_identifier(schema, name);
}

const char *
ForeignTableRemoteName(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	const char *schema = get_namespace_name(get_rel_namespace(relid));
	const char *name = get_rel_name(relid);
	ListCell *cell;
	foreach (cell, table->options)
	{
		DefElem *option = (DefElem *) lfirst(cell);
		if (strcmp(option->defname, "schema_name") == 0)
			schema = defGetString(option);
		else if (strcmp(option->defname, "table_name") == 0)
			name = defGetString(option);
	}
	return QualifiedName(schema, name);
}

const char *
QualifiedRelationName(Oid relid)
{
	char *schema = get_namespace_name(get_rel_namespace(relid));
	char *name = get_rel_name(relid);

	if (schema == NULL || name == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(schema, name);
}

const char *
QuotedRoleName(const RoleSpec *role)
{
	if (role->roletype == ROLESPEC_PUBLIC)
		return "PUBLIC";
	return quote_identifier(get_rolespec_name(role));
}

char *
NameWithSuffix(const char *name, int64 suffix)
{
	char suffix_text[32];
	snprintf(suffix_text, sizeof(suffix_text), "_" INT64_FORMAT, suffix);

	int keep = Min((int) strlen(name), NAMEDATALEN - 1 - (int) strlen(suffix_text));
	keep = pg_mbcliplen(name, strlen(name), keep); /* never cut a multibyte character */
	return psprintf("%.*s%s", keep, name, suffix_text);
}

char *
ShardTableDefinition(Oid logical_relid, const char *schema, const char *shard_name)
{
	return psprintf("CREATE TABLE %s %s", QualifiedName(schema, shard_name), ShardTableColumns(logical_relid));
}

char *
ShardTableColumns(Oid logical_relid)
{
	Relation rel = table_open(logical_relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	StringInfoData sql;
	bool first = true;
	/* Collations, generated expressions and CHECK constraints name functions and types: qualified. */
	int nest_level = BeginQualifiedDeparse();

	initStringInfo(&sql);
	appendStringInfoChar(&sql, '(');
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		appendStringInfo(
		    &sql, "%s%s %s", first ? "" : ", ", quote_identifier(NameStr(att->attname)),
		    format_type_extended(att->atttypid, att->atttypmod, FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
		if (OidIsValid(att->attcollation) && att->attcollation != get_typcollation(att->atttypid))
			appendStringInfo(&sql, " COLLATE %s", generate_collation_name(att->attcollation));
		if (att->attgenerated == ATTRIBUTE_GENERATED_STORED)
		{
			/* postgres_fdw sends DEFAULT for generated columns: the worker must compute them. */
			Node *expr = build_column_default(rel, att->attnum);
			List *context = deparse_context_for(RelationGetRelationName(rel), logical_relid);

			if (expr == NULL)
				elog(ERROR, "fdwshard: no expression for generated column \"%s\"", NameStr(att->attname));
			appendStringInfo(&sql, " GENERATED ALWAYS AS (%s) STORED", deparse_expression(expr, context, false, false));
		}
		if (att->attnotnull)
			appendStringInfoString(&sql, " NOT NULL");
		first = false;
	}

	/* CHECK constraints: foreign partitions do not enforce them, so the shard table must. */
	Relation constraints = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(logical_relid));
	SysScanDesc scan = systable_beginscan(constraints, ConstraintRelidTypidNameIndexId, true, NULL, 1, &key);
	HeapTuple tuple;
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tuple);

		/* A shard key's placeholder is the coordinator's alone (the worker's shard has the key itself). */
		if (con->contype != CONSTRAINT_CHECK || commands::IsShardKeyPlaceholder(con->oid))
			continue;
		Datum def = DirectFunctionCall1(pg_get_constraintdef, ObjectIdGetDatum(con->oid));
		appendStringInfo(&sql, ", CONSTRAINT %s %s", quote_identifier(NameStr(con->conname)), TextDatumGetCString(def));
	}
	systable_endscan(scan);
	table_close(constraints, AccessShareLock);

	appendStringInfoChar(&sql, ')');
	EndQualifiedDeparse(nest_level);
	table_close(rel, AccessShareLock);
	return sql.data;
}

char *
InsertableColumnList(Oid relid)
{
	Relation rel = table_open(relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	StringInfoData list;

	initStringInfo(&list);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		appendStringInfo(&list, "%s%s", list.len > 0 ? ", " : "", quote_identifier(NameStr(att->attname)));
	}
	table_close(rel, AccessShareLock);
	return list.data;
}

int
BeginQualifiedDeparse(void)
{
	int nest_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest_level;
}

void
EndQualifiedDeparse(int nest_level)
{
	AtEOXact_GUC(true, nest_level);
}

} // namespace fdwshard::remote
