/* Views over a table rebuilt by create_distributed_table or undistribute_table (see dependent_views.h). */
#include "fdwshard/operations/dependent_views.h"

#include "fdwshard/catalog/spi.h"

namespace fdwshard
{

using namespace catalog;

/* One saved view: the statements that make it again, in order. */
struct SavedView
{
	char *name;       /* schema-qualified, quoted */
	List *statements; /* CREATE VIEW, ALTER VIEW OWNER, GRANT, COMMENT */
};

List *
SaveAndDropDependentViews(Oid relid, const char *table_name)
{
	/* Every view reachable through view rules, each at its deepest level so it comes after what it reads. */
	const char *dependents = "WITH RECURSIVE deps(oid, depth) AS ("
	                         "  SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
	                         "  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
	                         "  AND d.refobjid = $1 AND r.ev_class <> $1 "
	                         "  UNION "
	                         "  SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d ON d.refobjid = deps.oid "
	                         "  AND d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
	                         "  JOIN pg_rewrite r ON r.oid = d.objid AND r.ev_class <> deps.oid) "
	                         "SELECT c.oid::regclass::text, c.relkind::text, pg_get_viewdef(c.oid), "
	                         "  array_to_string(c.reloptions, ', '), quote_ident(pg_get_userbyid(c.relowner)), "
	                         "  obj_description(c.oid, 'pg_class'), c.oid "
	                         "FROM (SELECT oid, max(depth) AS depth FROM deps GROUP BY oid) v "
	                         "JOIN pg_class c ON c.oid = v.oid ORDER BY v.depth, c.oid";
	uint64 count = SpiRun(dependents, {OidArg(relid)});
	List *views = NIL;

	for (uint64 row = 0; row < count; row++)
	{
		bool is_null;
		if (strcmp(SpiText(row, 2), "v") != 0)
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			                errmsg("cannot rebuild table \"%s\" because materialized view \"%s\" depends on it",
			                       table_name, get_rel_name(DatumGetObjectId(SpiValue(row, 7, &is_null)))),
			                errhint("Drop the materialized view first and create it again afterwards.")));
	}

	SPITupleTable *rows = SPI_tuptable;
	for (uint64 row = 0; row < count; row++)
	{
		SPI_tuptable = rows;
		SavedView *view = (SavedView *) palloc0(sizeof(SavedView));
		char *options = SpiText(row, 4);
		char *comment = SpiText(row, 6);
		bool is_null;
		Oid view_oid = DatumGetObjectId(SpiValue(row, 7, &is_null));

		view->name = SpiText(row, 1);
		view->statements = lappend(
		    view->statements,
		    psprintf("CREATE VIEW %s%s AS %s", view->name,
		             options != NULL && options[0] != '\0' ? psprintf(" WITH (%s)", options) : "", SpiText(row, 3)));
		view->statements =
		    lappend(view->statements, psprintf("ALTER VIEW %s OWNER TO %s", view->name, SpiText(row, 5)));
		if (comment != NULL)
			view->statements = lappend(view->statements,
			                           psprintf("COMMENT ON VIEW %s IS %s", view->name, quote_literal_cstr(comment)));
		uint64 grants =
		    SpiRun("SELECT format('GRANT %s%s ON TABLE %s TO %s%s', a.privilege_type, "
		           "  CASE WHEN x.attname IS NULL THEN '' ELSE format(' (%I)', x.attname) END, $2, "
		           "  CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
		           "  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) "
		           "FROM (SELECT NULL::name AS attname, relacl AS acl FROM pg_class WHERE oid = $1 "
		           "      UNION ALL SELECT attname, attacl FROM pg_attribute "
		           "      WHERE attrelid = $1 AND attnum > 0 AND attacl IS NOT NULL) x, "
		           "     LATERAL aclexplode(x.acl) a",
		           {OidArg(view_oid), TextArg(view->name)});
		for (uint64 grant = 0; grant < grants; grant++)
			view->statements = lappend(view->statements, SpiText(grant, 1));
		views = lappend(views, view);
	}

	/* Deepest first, so no view is dropped while another still reads it. */
	for (int i = list_length(views) - 1; i >= 0; i--)
		SpiRun(psprintf("DROP VIEW %s", ((SavedView *) list_nth(views, i))->name));
	return views;
}

void
RestoreDependentViews(List *views)
{
	ListCell *cell;
	foreach (cell, views)
	{
		ListCell *statement;
		foreach (statement, ((SavedView *) lfirst(cell))->statements)
			SpiRun((const char *) lfirst(statement));
	}
}

} // namespace fdwshard
