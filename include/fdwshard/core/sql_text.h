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

} // namespace fdwshard::core
