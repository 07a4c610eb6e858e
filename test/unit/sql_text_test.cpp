/* Unit tests for core/sql_text: collapsing the deparser's line breaks without touching literals. */
#include "fdwshard/core/sql_text.h"

#include <string>

#include <gtest/gtest.h>

using fdwshard::core::CollapseLineBreaks;

namespace
{

std::string
Collapse(std::string sql)
{
	size_t length = CollapseLineBreaks(sql.data());
	EXPECT_EQ(length, std::char_traits<char>::length(sql.c_str()));
	return std::string(sql.c_str());
}

TEST(CollapseLineBreaks, JoinsLinesWithOneSpace)
{
	EXPECT_EQ(Collapse(" SELECT a,\n    b\n   FROM t\n  WHERE (a = 1)"), "SELECT a, b FROM t WHERE (a = 1)");
}

TEST(CollapseLineBreaks, KeepsSpacesWithoutLineBreak)
{
	EXPECT_EQ(Collapse("SELECT  a ,\tb"), "SELECT  a ,\tb");
}

TEST(CollapseLineBreaks, KeepsStringLiterals)
{
	EXPECT_EQ(Collapse("SELECT 'a\n  b'::text,\n  1"), "SELECT 'a\n  b'::text, 1");
	EXPECT_EQ(Collapse("SELECT 'it''s\n x',\n 2"), "SELECT 'it''s\n x', 2");
}

TEST(CollapseLineBreaks, KeepsEscapeStrings)
{
	EXPECT_EQ(Collapse("SELECT E'\\'\n  x',\n 3"), "SELECT E'\\'\n  x', 3");
}

TEST(CollapseLineBreaks, KeepsQuotedIdentifiers)
{
	EXPECT_EQ(Collapse("SELECT \"a\n  b\",\n  \"c\"\"d\"\n FROM t"), "SELECT \"a\n  b\", \"c\"\"d\" FROM t");
}

TEST(CollapseLineBreaks, TrimsEnds)
{
	EXPECT_EQ(Collapse("\n  SELECT 1\n  "), "SELECT 1");
	EXPECT_EQ(Collapse(""), "");
	EXPECT_EQ(Collapse("   "), "");
}

} // namespace
