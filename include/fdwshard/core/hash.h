/* xxHash of normalised values, folded to the signed 32-bit hash space shards are cut from. */
#pragma once

#include "fdwshard/core/no_postgres.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fdwshard::core
{

/* Folds a 64-bit xxHash into the signed 32-bit hash space. */
int32_t FoldHash(uint64_t hash);

/* Hash of raw bytes: strings, bytea, uuid and normalised text forms. */
int32_t HashBytes(const void *data, size_t length);

/* Hash of an integer value; int2, int4 and int8 all go through it so equal values hash equal. */
int32_t HashInt64(int64_t value);

/* Hash of a float; float4 is widened first, -0 equals 0 and every NaN is one value. */
int32_t HashDouble(double value);

/*
 * Canonical text of a decimal as numeric_out prints it: trailing fractional zeroes and a bare
 * point removed, negative zero made zero, so 1.0 and 1.00 normalise alike.
 */
std::string NormalizeDecimalText(std::string_view text);

} // namespace fdwshard::core
