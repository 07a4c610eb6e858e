/* Shard range math: how shard_count shards split the signed 32-bit hash space. */
#pragma once

#include "fdwshard/core/no_postgres.h"

#include <cstdint>

namespace fdwshard::core
{

constexpr int kMinShardCount = 1;
constexpr int kMaxShardCount = 64000;

/* An inclusive range of hash values owned by one shard. */
struct HashRange
{
	int32_t min_hash;
	int32_t max_hash;
};

/* True when shard_count is within [kMinShardCount, kMaxShardCount]. */
bool ValidShardCount(int shard_count);

/*
 * Range of shard shard_index out of shard_count equal contiguous ranges. Every shard gets
 * 2^32 / shard_count values; the last one also takes the remainder up to INT32_MAX.
 */
HashRange ShardHashRange(int shard_index, int shard_count);

/* Index of the shard whose range holds hash: O(1) arithmetic, the inverse of ShardHashRange. */
int ShardIndexForHash(int32_t hash, int shard_count);

/*
 * Index of the range holding hash among count ranges sorted by min_hash (any struct with
 * min_hash and max_hash: split shards make ranges uneven), or -1 when a gap leaves it uncovered.
 * Binary search: O(log count).
 */
template <typename Range>
int
FindRangeIndex(const Range *ranges, int count, int32_t hash)
{
	int low = 0;
	int high = count - 1;
	while (low <= high)
	{
		int middle = low + (high - low) / 2;
		if (hash < ranges[middle].min_hash)
			high = middle - 1;
		else if (hash > ranges[middle].max_hash)
			low = middle + 1;
		else
			return middle;
	}
	return -1;
}

} // namespace fdwshard::core
