/* xxHash of normalised values (see core/hash.h). */
#define FDWSHARD_CORE_SOURCE
#include "fdwshard/core/hash.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <xxhash.h>

#include "fdwshard/core/no_postgres.h" /* last: proves nothing above pulled in PostgreSQL */

namespace fdwshard::core
{

int32_t
FoldHash(uint64_t hash)
{
	return static_cast<int32_t>(static_cast<uint32_t>(hash ^ (hash >> 32)));
}

int32_t
HashBytes(const void *data, size_t length)
{
	return FoldHash(XXH3_64bits(data, length));
}

int32_t
HashInt64(int64_t value)
{
	/* Hash a fixed little-endian image so the result does not depend on the host's byte order. */
	unsigned char bytes[8];
	uint64_t bits = static_cast<uint64_t>(value);

	for (int i = 0; i < 8; i++)
		bytes[i] = static_cast<unsigned char>(bits >> (8 * i));
	return HashBytes(bytes, sizeof(bytes));
}

int32_t
HashDouble(double value)
{
	if (value == 0.0)
		value = 0.0; /* -0 == 0 under float8eq */
	if (std::isnan(value))
		value = std::numeric_limits<double>::quiet_NaN(); /* all NaNs are equal in PostgreSQL */

	uint64_t bits;
	std::memcpy(&bits, &value, sizeof(bits));
	return HashInt64(static_cast<int64_t>(bits));
}

std::string
NormalizeDecimalText(std::string_view text)
{
	std::string result(text);

	if (result.find('.') != std::string::npos)
	{
		while (!result.empty() && result.back() == '0')
			result.pop_back();
		if (!result.empty() && result.back() == '.')
			result.pop_back();
	}
	if (result == "-0")
		result = "0";
	return result;
}

} // namespace fdwshard::core
