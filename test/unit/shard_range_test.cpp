/* Unit tests for core/shard_range: how shard_count shards split the signed 32-bit hash space. */
#include "fdwshard/core/shard_range.h"

#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

using namespace fdwshard::core;

namespace
{

constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

std::vector<HashRange>
AllRanges(int shard_count)
{
	std::vector<HashRange> ranges;
	ranges.reserve(shard_count);
	for (int i = 0; i < shard_count; i++)
		ranges.push_back(ShardHashRange(i, shard_count));
	return ranges;
}

/* Reference lookup: the first range that holds hash, or -1. */
int
LinearShardIndex(const std::vector<HashRange> &ranges, int32_t hash)
{
	for (size_t i = 0; i < ranges.size(); i++)
		if (ranges[i].min_hash <= hash && hash <= ranges[i].max_hash)
			return static_cast<int>(i);
	return -1;
}

} // namespace

/* The 8-shard table from "Database sharding explained in plain English" (Citus), 0-based here. */
TEST(ShardHashRange, EightShardsMatchCitusTable)
{
	const HashRange expected[8] = {
	    {-2147483647 - 1, -1610612737},
	    {-1610612736, -1073741825},
	    {-1073741824, -536870913},
	    {-536870912, -1},
	    {0, 536870911},
	    {536870912, 1073741823},
	    {1073741824, 1610612735},
	    {1610612736, 2147483647},
	};

	for (int i = 0; i < 8; i++)
	{
		HashRange range = ShardHashRange(i, 8);
		EXPECT_EQ(range.min_hash, expected[i].min_hash) << "shard " << i;
		EXPECT_EQ(range.max_hash, expected[i].max_hash) << "shard " << i;
	}
}

TEST(ShardHashRange, OneShardCoversEverything)
{
	HashRange range = ShardHashRange(0, 1);
	EXPECT_EQ(range.min_hash, kInt32Min);
	EXPECT_EQ(range.max_hash, kInt32Max);
}

TEST(ShardHashRange, LastShardTakesRemainder)
{
	/* 2^32 = 3 * 1431655765 + 1: the last of 3 shards is one value wider. */
	HashRange first = ShardHashRange(0, 3);
	HashRange last = ShardHashRange(2, 3);
	EXPECT_EQ(static_cast<int64_t>(first.max_hash) - first.min_hash + 1, 1431655765);
	EXPECT_EQ(static_cast<int64_t>(last.max_hash) - last.min_hash + 1, 1431655766);
}

class ShardRangeCountTest : public ::testing::TestWithParam<int>
{
};

TEST_P(ShardRangeCountTest, RangesAreContiguousAndCoverHashSpace)
{
	const int shard_count = GetParam();
	std::vector<HashRange> ranges = AllRanges(shard_count);

	ASSERT_EQ(ranges.size(), static_cast<size_t>(shard_count));
	EXPECT_EQ(ranges.front().min_hash, kInt32Min);
	EXPECT_EQ(ranges.back().max_hash, kInt32Max);

	int64_t total = 0;
	for (int i = 0; i < shard_count; i++)
	{
		const HashRange &range = ranges[i];
		ASSERT_LE(range.min_hash, range.max_hash) << "empty shard " << i;
		total += static_cast<int64_t>(range.max_hash) - range.min_hash + 1;
		if (i > 0)
		{
			ASSERT_EQ(static_cast<int64_t>(range.min_hash), static_cast<int64_t>(ranges[i - 1].max_hash) + 1)
			    << "gap or overlap before shard " << i;
		}
	}
	EXPECT_EQ(total, int64_t{1} << 32);
}

TEST_P(ShardRangeCountTest, RangeWidthsDifferOnlyInLastShard)
{
	const int shard_count = GetParam();
	const int64_t width = (int64_t{1} << 32) / shard_count;

	for (int i = 0; i < shard_count; i++)
	{
		HashRange range = ShardHashRange(i, shard_count);
		int64_t size = static_cast<int64_t>(range.max_hash) - range.min_hash + 1;
		if (i < shard_count - 1)
		{
			ASSERT_EQ(size, width) << "shard " << i;
		}
		else
		{
			ASSERT_EQ(size, width + (int64_t{1} << 32) % shard_count) << "last shard";
		}
	}
}

TEST_P(ShardRangeCountTest, IndexForHashInvertsRangeEndpoints)
{
	const int shard_count = GetParam();

	/* Every shard, even for 64000: two O(1) lookups each, cheap. */
	for (int i = 0; i < shard_count; i++)
	{
		HashRange range = ShardHashRange(i, shard_count);
		ASSERT_EQ(ShardIndexForHash(range.min_hash, shard_count), i) << "min of shard " << i;
		ASSERT_EQ(ShardIndexForHash(range.max_hash, shard_count), i) << "max of shard " << i;
	}
}

TEST_P(ShardRangeCountTest, IndexForHashMatchesLinearSearch)
{
	const int shard_count = GetParam();
	std::vector<HashRange> ranges = AllRanges(shard_count);

	/* mt19937's raw output is specified by the standard, so this sequence is the same everywhere. */
	std::mt19937 rng(20240607u + static_cast<uint32_t>(shard_count));
	std::vector<int32_t> hashes = {kInt32Min, kInt32Min + 1, -1, 0, 1, kInt32Max - 1, kInt32Max};
	for (int i = 0; i < 4000; i++)
		hashes.push_back(static_cast<int32_t>(static_cast<uint32_t>(rng())));

	for (int32_t hash : hashes)
	{
		int expected = LinearShardIndex(ranges, hash);
		ASSERT_GE(expected, 0) << "hash " << hash << " in no range";
		ASSERT_EQ(ShardIndexForHash(hash, shard_count), expected) << "hash " << hash;
	}
}

INSTANTIATE_TEST_SUITE_P(ShardCounts, ShardRangeCountTest, ::testing::Values(1, 2, 3, 7, 8, 32, 100, 512, 1000, 64000));

TEST(ValidShardCount, Boundaries)
{
	EXPECT_FALSE(ValidShardCount(std::numeric_limits<int>::min()));
	EXPECT_FALSE(ValidShardCount(-1));
	EXPECT_FALSE(ValidShardCount(0));
	EXPECT_TRUE(ValidShardCount(1));
	EXPECT_TRUE(ValidShardCount(kMinShardCount));
	EXPECT_TRUE(ValidShardCount(32));
	EXPECT_TRUE(ValidShardCount(64000));
	EXPECT_TRUE(ValidShardCount(kMaxShardCount));
	EXPECT_FALSE(ValidShardCount(64001));
	EXPECT_FALSE(ValidShardCount(std::numeric_limits<int>::max()));
}

TEST(ShardHashRange, RejectsBadShardCount)
{
	EXPECT_THROW(ShardHashRange(0, 0), std::invalid_argument);
	EXPECT_THROW(ShardHashRange(0, -1), std::invalid_argument);
	EXPECT_THROW(ShardHashRange(0, 64001), std::invalid_argument);
	EXPECT_THROW(ShardHashRange(0, std::numeric_limits<int>::max()), std::invalid_argument);
}

TEST(ShardHashRange, RejectsBadShardIndex)
{
	EXPECT_THROW(ShardHashRange(-1, 8), std::out_of_range);
	EXPECT_THROW(ShardHashRange(8, 8), std::out_of_range);
	EXPECT_THROW(ShardHashRange(1, 1), std::out_of_range);
	EXPECT_THROW(ShardHashRange(64000, 64000), std::out_of_range);
	EXPECT_THROW(ShardHashRange(std::numeric_limits<int>::min(), 8), std::out_of_range);
	EXPECT_NO_THROW(ShardHashRange(63999, 64000));
}

TEST(ShardIndexForHash, RejectsBadShardCount)
{
	EXPECT_THROW(ShardIndexForHash(0, 0), std::invalid_argument);
	EXPECT_THROW(ShardIndexForHash(0, -1), std::invalid_argument);
	EXPECT_THROW(ShardIndexForHash(kInt32Max, 64001), std::invalid_argument);
	EXPECT_THROW(ShardIndexForHash(kInt32Min, std::numeric_limits<int>::min()), std::invalid_argument);
}

TEST(FindRangeIndex, UnevenRangesAfterSplits)
{
	/* Shard 1 of 4 split in two: five uneven, contiguous ranges. */
	const fdwshard::core::HashRange ranges[] = {{INT32_MIN, -1073741825},
	                                            {-1073741824, -536870913},
	                                            {-536870912, -1},
	                                            {0, 1073741823},
	                                            {1073741824, INT32_MAX}};
	EXPECT_EQ(0, fdwshard::core::FindRangeIndex(ranges, 5, INT32_MIN));
	EXPECT_EQ(0, fdwshard::core::FindRangeIndex(ranges, 5, -1073741825));
	EXPECT_EQ(1, fdwshard::core::FindRangeIndex(ranges, 5, -1073741824));
	EXPECT_EQ(1, fdwshard::core::FindRangeIndex(ranges, 5, -536870913));
	EXPECT_EQ(2, fdwshard::core::FindRangeIndex(ranges, 5, -536870912));
	EXPECT_EQ(2, fdwshard::core::FindRangeIndex(ranges, 5, -1));
	EXPECT_EQ(3, fdwshard::core::FindRangeIndex(ranges, 5, 0));
	EXPECT_EQ(4, fdwshard::core::FindRangeIndex(ranges, 5, INT32_MAX));
}

TEST(FindRangeIndex, GapIsNotCovered)
{
	const fdwshard::core::HashRange ranges[] = {{INT32_MIN, -1}, {10, INT32_MAX}};
	EXPECT_EQ(-1, fdwshard::core::FindRangeIndex(ranges, 2, 5));
	EXPECT_EQ(0, fdwshard::core::FindRangeIndex(ranges, 2, -1));
	EXPECT_EQ(1, fdwshard::core::FindRangeIndex(ranges, 2, 10));
	EXPECT_EQ(-1, fdwshard::core::FindRangeIndex(ranges, 0, 10));
}

TEST(FindRangeIndex, AgreesWithUniformArithmetic)
{
	for (int count : {1, 3, 8, 100})
	{
		std::vector<fdwshard::core::HashRange> ranges;
		for (int i = 0; i < count; i++)
			ranges.push_back(fdwshard::core::ShardHashRange(i, count));
		for (int64_t hash = INT32_MIN; hash <= INT32_MAX; hash += 104729 * 37)
			EXPECT_EQ(fdwshard::core::ShardIndexForHash(static_cast<int32_t>(hash), count),
			          fdwshard::core::FindRangeIndex(ranges.data(), count, static_cast<int32_t>(hash)));
	}
}
