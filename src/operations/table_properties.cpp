/* Properties of a table that create_distributed_table and undistribute_table carry over (see table_properties.h). */
#include "fdwshard/operations/table_properties.h"

#include "fdwshard/catalog/spi.h"

namespace fdwshard
{

using namespace catalog;

TableProperties
ReadTableProperties(Oid relid, const char *rel)
{
	TableProperties properties = {NIL, NIL, NIL, NULL};

	/* Grants on the table and its columns, replayed as GRANT statements. */
	uint64 count = SpiRun("SELECT format('GRANT %s%s ON TABLE %s TO %s%s', a.privilege_type, "
	                      "  CASE WHEN x.attname IS NULL THEN '' ELSE format(' (%I)', x.attname) END, $2, "
	                      "  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
	                      "  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) "
	                      "FROM (SELECT NULL::name AS attname, relacl AS acl FROM pg_class WHERE oid = $1 "
	                      "      UNION ALL SELECT attname, attacl FROM pg_attribute "
	                      "      WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attacl IS NOT NULL) x, "
	                      "     LATERAL aclexplode(x.acl) a",
	                      {OidArg(relid), TextArg(rel)});
	for (uint64 row = 0; row < count; row++)
		properties.grants = lappend(properties.grants, SpiText(row, 1));

	/* serial columns: sequences owned by a column, handed over to the new table. */
	count = SpiRun("SELECT d.objid::regclass::text, a.attname FROM pg_depend d "
	               "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
	               "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
	               "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
	               "AND d.refobjid = $1 AND d.deptype = 'a'",
	               {OidArg(relid)});
	for (uint64 row = 0; row < count; row++)
		properties.owned_sequences =
		    lappend(properties.owned_sequences, psprintf("ALTER SEQUENCE %s OWNED BY %s.%s", SpiText(row, 1), rel,
		                                                 quote_identifier(SpiText(row, 2))));

	count = SpiRun("SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attidentity <> '' AND NOT attisdropped",
	               {OidArg(relid)});
	for (uint64 row = 0; row < count; row++)
		properties.identity_columns = lappend(properties.identity_columns, SpiText(row, 1));

	SpiRun("SELECT obj_description($1, 'pg_class')", {OidArg(relid)});
	properties.comment = SpiText(0, 1);
	return properties;
}

List *
CarryOverIdentitySequences(const TableProperties &properties, const char *old_rel, const char *new_rel)
{
	List *renames = NIL;
	ListCell *cell;

	foreach (cell, properties.identity_columns)
	{
		SpiRun("SELECT pg_get_serial_sequence($1, $3), pg_get_serial_sequence($2, $3), "
		       "(SELECT relname FROM pg_class WHERE oid = pg_get_serial_sequence($1, $3)::regclass)",
		       {TextArg(old_rel), TextArg(new_rel), TextArg((const char *) lfirst(cell))});
		char *old_sequence = SpiText(0, 1);
		char *new_sequence = SpiText(0, 2);
		renames =
		    lappend(renames, psprintf("ALTER SEQUENCE %s RENAME TO %s", new_sequence, quote_identifier(SpiText(0, 3))));
		SpiRun(psprintf("SELECT pg_catalog.setval(%s::regclass, last_value, is_called) FROM %s",
		                quote_literal_cstr(new_sequence), old_sequence));
	}
	return renames;
}

void
RestoreGrantsAndComment(const TableProperties &properties, const char *rel)
{
	ListCell *cell;

	foreach (cell, properties.grants)
		SpiRun((const char *) lfirst(cell));
	if (properties.comment != NULL)
		SpiRun(psprintf("COMMENT ON TABLE %s IS %s", rel, quote_literal_cstr(properties.comment)));
}

} // namespace fdwshard
