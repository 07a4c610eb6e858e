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

} // namespace fdwshard::core
