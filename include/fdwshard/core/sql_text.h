/* Text-level touches to SQL already built by the deparser: no parsing, quotes respected. */
#pragma once

#include "fdwshard/core/no_postgres.h"

#include <cstddef>

namespace fdwshard::core
{

/*
 * Rewrites sql in place so that every run of whitespace holding a line break, outside string
 * literals ('...', E'...') and quoted identifiers ("..."), becomes one space, and leading and
 * trailing whitespace goes. Returns the new length. Shipped statements then read as one line in
 * EXPLAIN, error contexts and the worker's logs.
 */
size_t CollapseLineBreaks(char *sql);

/*
 * Writes sql with every name token equal to from[i] (a whole identifier, or a whole quoted
 * identifier with its quotes, as quote_identifier prints it) replaced by to[i], outside string
 * literals, into out (at most out_size bytes, NUL included; out may be NULL when out_size is 0).
 * Returns the length of the whole result, as snprintf does: call once to size, once to write.
 * One shard's deparsed statement becomes another shard's of the same tables.
 */
size_t ReplaceNames(const char *sql, const char *const *from, const char *const *to, int count, char *out,
                    size_t out_size);

/* A name token of a statement that ReplaceNames replaces: where it is, and which name of from. */
struct NamePlace
{
	size_t offset;
	size_t length;
	int name;
};

/*
 * The name tokens of sql equal to from[i], found as ReplaceNames finds them, in order: writes up
 * to max_places of them into places and returns how many there are.
 */
int FindNames(const char *sql, const char *const *from, int count, NamePlace *places, int max_places);

/*
 * sql with the tokens at places (FindNames', place_count of them) replaced by to[place.name],
 * written as ReplaceNames writes and equal to its result, without scanning sql again: the many
 * statements made from one model.
 */
size_t SpliceNames(const char *sql, const NamePlace *places, int place_count, const char *const *to, char *out,
                   size_t out_size);

/* The table of a one-table statement, as FindSoleFromItem finds it. */
struct FromItem
{
	size_t offset;  /* where "schema.name" starts */
	size_t length;  /* its length, without any alias */
	bool has_alias; /* an alias follows it */
};

/*
 * Where the table of a one-table SELECT deparsed by PostgreSQL is, given the one place of its
 * name (FindNames') and its quoted schema: " FROM schema.name", outside parentheses, then its
 * end or a clause (WHERE, GROUP BY, ORDER BY, LIMIT, OFFSET, HAVING, WINDOW, FETCH), with or
 * without one alias between. Anything else (FOR UPDATE, column aliases, a subquery) is false:
 * the statement is not spliced into another shape.
 */
bool FindSoleFromItem(const char *sql, const NamePlace &place, const char *schema, FromItem *item);

} // namespace fdwshard::core
