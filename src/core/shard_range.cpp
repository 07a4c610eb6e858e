/* Shard range math (see core/shard_range.h). */
#define FDWSHARD_CORE_SOURCE
#include "fdwshard/core/shard_range.h"

#include <limits>
#include <stdexcept>

#include "fdwshard/core/no_postgres.h" /* last: proves nothing above pulled in PostgreSQL */

namespace fdwshard::core
{

namespace
{

constexpr int64_t kHashMin = std::numeric_limits<int32_t>::min();
constexpr int64_t kHashMax = std::numeric_limits<int32_t>::max();
constexpr int64_t kHashSpace = kHashMax - kHashMin + 1; /* 2^32 */

int64_t
RangeWidth(int shard_count)
{
	if (!ValidShardCount(shard_count))
		throw std::invalid_argument("shard_count out of range");
	return kHashSpace / shard_count;
}

} // namespace

bool
ValidShardCount(int shard_count)
{
	return shard_count >= kMinShardCount && shard_count <= kMaxShardCount;
}

HashRange
ShardHashRange(int shard_index, int shard_count)
{
	int64_t width = RangeWidth(shard_count);

	if (shard_index < 0 || shard_index >= shard_count)
		throw std::out_of_range("shard_index out of range");

	int64_t min_hash = kHashMin + width * shard_index;
	int64_t max_hash = (shard_index == shard_count - 1) ? kHashMax : min_hash + width - 1;

	return HashRange{static_cast<int32_t>(min_hash), static_cast<int32_t>(max_hash)};
}

int
ShardIndexForHash(int32_t hash, int shard_count)
{
	int64_t index = (static_cast<int64_t>(hash) - kHashMin) / RangeWidth(shard_count);

	/* The last shard absorbs the remainder of an uneven split. */
	return index >= shard_count ? shard_count - 1 : static_cast<int>(index);
}

} // namespace fdwshard::core
