/* Unit tests for core/hash: xxHash of normalised values folded to the signed 32-bit hash space. */
#include "fdwshard/core/hash.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include <gtest/gtest.h>

using namespace fdwshard::core;

namespace
{

double
DoubleFromBits(uint64_t bits)
{
	double value;
	std::memcpy(&value, &bits, sizeof(value));
	return value;
}

} // namespace

TEST(HashDouble, NegativeZeroEqualsZero)
{
	EXPECT_EQ(HashDouble(-0.0), HashDouble(0.0));
}

TEST(HashDouble, AllNaNsHashEqual)
{
	const int32_t canonical = HashDouble(std::numeric_limits<double>::quiet_NaN());
	const uint64_t nan_patterns[] = {
	    0x7ff8000000000000ull, /* default quiet NaN */
	    0xfff8000000000000ull, /* negative quiet NaN */
	    0x7ff8000000000123ull, /* quiet NaN with payload */
	    0x7ff0000000000001ull, /* signalling NaN */
	    0xfff0000000000001ull, /* negative signalling NaN */
	    0x7fffffffffffffffull, /* all mantissa bits set */
	    0xffffffffffffffffull,
	};

	for (uint64_t bits : nan_patterns)
	{
		double value = DoubleFromBits(bits);
		ASSERT_TRUE(value != value) << std::hex << bits << " is not a NaN";
		EXPECT_EQ(HashDouble(value), canonical) << std::hex << bits;
	}
	EXPECT_EQ(HashDouble(std::numeric_limits<double>::signaling_NaN()), canonical);
	EXPECT_EQ(HashDouble(-std::numeric_limits<double>::quiet_NaN()), canonical);
}

TEST(HashDouble, NaNDiffersFromInfinities)
{
	const int32_t nan = HashDouble(std::numeric_limits<double>::quiet_NaN());
	EXPECT_NE(nan, HashDouble(std::numeric_limits<double>::infinity()));
	EXPECT_NE(nan, HashDouble(-std::numeric_limits<double>::infinity()));
	EXPECT_NE(HashDouble(std::numeric_limits<double>::infinity()),
	          HashDouble(-std::numeric_limits<double>::infinity()));
}

TEST(HashDouble, WidenedFloatMatchesDouble)
{
	/* float4 columns widen to double before hashing, so 1.5::float4 and 1.5::float8 co-locate. */
	EXPECT_EQ(HashDouble(static_cast<double>(1.5f)), HashDouble(1.5));
	EXPECT_EQ(HashDouble(static_cast<double>(-0.0f)), HashDouble(0.0));
	EXPECT_EQ(HashDouble(static_cast<double>(std::numeric_limits<float>::quiet_NaN())),
	          HashDouble(std::numeric_limits<double>::quiet_NaN()));
}

TEST(HashDouble, DistinguishesValues)
{
	EXPECT_NE(HashDouble(1.0), HashDouble(2.0));
	EXPECT_NE(HashDouble(1.0), HashDouble(-1.0));
	EXPECT_EQ(HashDouble(1.5), HashDouble(1.5));
}

TEST(HashInt64, DistinguishesValues)
{
	EXPECT_NE(HashInt64(1), HashInt64(2));
	EXPECT_NE(HashInt64(0), HashInt64(1));
	EXPECT_NE(HashInt64(1), HashInt64(-1));
	EXPECT_EQ(HashInt64(42), HashInt64(42));
}

TEST(HashInt64, HashesLittleEndianImage)
{
	/* Host-independent: the hash is of the 8-byte little-endian image, whatever the CPU. */
	const int64_t values[] = {
	    0, 1, -1, 0x0102030405060708ll, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()};
	for (int64_t value : values)
	{
		unsigned char bytes[8];
		uint64_t bits = static_cast<uint64_t>(value);
		for (int i = 0; i < 8; i++)
			bytes[i] = static_cast<unsigned char>(bits >> (8 * i));
		EXPECT_EQ(HashInt64(value), HashBytes(bytes, sizeof(bytes))) << value;
	}
}

TEST(HashBytes, EqualBytesHashEqual)
{
	const std::string a = "distribution key";
	const std::string b = std::string("distribution") + " key"; /* separate buffer, same bytes */
	ASSERT_NE(static_cast<const void *>(a.data()), static_cast<const void *>(b.data()));
	EXPECT_EQ(HashBytes(a.data(), a.size()), HashBytes(b.data(), b.size()));
}

TEST(HashBytes, DifferentLengthsHashDifferent)
{
	const char data[] = {'a', 'b', 'c', '\0', '\0'};
	EXPECT_NE(HashBytes(data, 3), HashBytes(data, 4));
	EXPECT_NE(HashBytes(data, 4), HashBytes(data, 5));
	EXPECT_NE(HashBytes(data, 0), HashBytes(data, 1));
	EXPECT_NE(HashBytes("ab", 2), HashBytes("abc", 3));
}

TEST(HashBytes, EmptyInputIsStable)
{
	EXPECT_EQ(HashBytes("", 0), HashBytes("xyz", 0));
}

TEST(FoldHash, XorsHalves)
{
	EXPECT_EQ(FoldHash(0), 0);
	EXPECT_EQ(FoldHash(0x0000000100000001ull), 0);
	EXPECT_EQ(FoldHash(0x00000000ffffffffull), -1);
	EXPECT_EQ(FoldHash(0xffffffff00000000ull), -1);
	EXPECT_EQ(FoldHash(0x0000000080000000ull), std::numeric_limits<int32_t>::min());
}

TEST(NormalizeDecimalText, StripsTrailingFractionalZeroes)
{
	EXPECT_EQ(NormalizeDecimalText("1"), "1");
	EXPECT_EQ(NormalizeDecimalText("1.0"), "1");
	EXPECT_EQ(NormalizeDecimalText("1.00"), "1");
	EXPECT_EQ(NormalizeDecimalText("10.50"), "10.5");
	EXPECT_EQ(NormalizeDecimalText("-1.10"), "-1.1");
	EXPECT_EQ(NormalizeDecimalText("100.0"), "100");
	EXPECT_EQ(NormalizeDecimalText("0.001"), "0.001");
}

TEST(NormalizeDecimalText, KeepsIntegerZeroes)
{
	/* Zeroes are stripped only after a decimal point. */
	EXPECT_EQ(NormalizeDecimalText("100"), "100");
	EXPECT_EQ(NormalizeDecimalText("10"), "10");
	EXPECT_EQ(NormalizeDecimalText("-100"), "-100");
	EXPECT_EQ(NormalizeDecimalText("0"), "0");
}

TEST(NormalizeDecimalText, ZeroForms)
{
	EXPECT_EQ(NormalizeDecimalText("0.000"), "0");
	EXPECT_EQ(NormalizeDecimalText("-0.00"), "0");
	EXPECT_EQ(NormalizeDecimalText("-0"), "0");
	EXPECT_EQ(NormalizeDecimalText("0.0"), "0");
}

TEST(NormalizeDecimalText, SpecialValuesUnchanged)
{
	EXPECT_EQ(NormalizeDecimalText("NaN"), "NaN");
	EXPECT_EQ(NormalizeDecimalText("Infinity"), "Infinity");
	EXPECT_EQ(NormalizeDecimalText("-Infinity"), "-Infinity");
}

TEST(NormalizeDecimalText, EqualNumericsHashEqual)
{
	const std::string a = NormalizeDecimalText("1.0");
	const std::string b = NormalizeDecimalText("1.00");
	EXPECT_EQ(HashBytes(a.data(), a.size()), HashBytes(b.data(), b.size()));
}

/*
 * These constants pin the on-disk shard layout: a row lives in the shard its distribution
 * key hashes to, so changing any of them (a different xxHash variant, seed, fold, byte image
 * or normalisation) would strand existing rows in the wrong shards. Do not update them to make
 * this test pass; a deliberate change needs a data migration (re-sharding) plan.
 */
TEST(HashStability, KnownValues)
{
	EXPECT_EQ(HashInt64(1), 1265049627);
	EXPECT_EQ(HashInt64(2), -1318575073);
	EXPECT_EQ(HashInt64(3), -1939468716);
	EXPECT_EQ(HashInt64(-1), 745112567);
	EXPECT_EQ(HashBytes("abc", 3), -243243324);
	EXPECT_EQ(HashDouble(1.5), -1164472112);
}
