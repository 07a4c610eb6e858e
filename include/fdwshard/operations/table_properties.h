/* What a table rebuilt under the same name must get back: grants, owned sequences, identity columns, comment. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard
{

struct TableProperties
{
	List *grants;           /* GRANT statements on the table and its columns */
	List *owned_sequences;  /* ALTER SEQUENCE ... OWNED BY statements (serial columns) */
	List *identity_columns; /* names of identity columns */
	char *comment;          /* NULL when none */
};

/* Reads them for relid; the statements name the table as rel (quoted schema.name). Needs SPI. */
TableProperties ReadTableProperties(Oid relid, const char *rel);

/*
 * Identity columns of the new table new_rel got new sequences: sets them where old_rel's stood.
 * Returns the statements that give them the old sequences' names, to run once old_rel is dropped.
 */
List *CarryOverIdentitySequences(const TableProperties &properties, const char *old_rel, const char *new_rel);

/* Replays the grants and the comment on rel. */
void RestoreGrantsAndComment(const TableProperties &properties, const char *rel);

} // namespace fdwshard
