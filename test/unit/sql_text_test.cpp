/* Unit tests for core/sql_text: collapsing the deparser's line breaks without touching literals. */
#include "fdwshard/core/sql_text.h"

#include <string>
#include <vector>

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

namespace
{

using fdwshard::core::FindNames;
using fdwshard::core::NamePlace;
using fdwshard::core::ReplaceNames;
using fdwshard::core::SpliceNames;

std::string
Replace(const char *sql, const char *from0, const char *to0, const char *from1 = nullptr, const char *to1 = nullptr)
{
	const char *from[] = {from0, from1};
	const char *to[] = {to0, to1};
	int count = from1 != nullptr ? 2 : 1;
	size_t length = ReplaceNames(sql, from, to, count, nullptr, 0);
	std::string out(length + 1, 'x');
	EXPECT_EQ(ReplaceNames(sql, from, to, count, out.data(), out.size()), length);
	EXPECT_EQ(out[length], '\0');
	out.resize(length);

	/* The same from the places FindNames finds, spliced without a second scan. */
	int places = FindNames(sql, from, count, nullptr, 0);
	std::vector<NamePlace> found(places + 1);
	EXPECT_EQ(FindNames(sql, from, count, found.data(), places), places);
	size_t spliced_length = SpliceNames(sql, found.data(), places, to, nullptr, 0);
	std::string spliced(spliced_length + 1, 'x');
	EXPECT_EQ(SpliceNames(sql, found.data(), places, to, spliced.data(), spliced.size()), spliced_length);
	spliced.resize(spliced_length);
	EXPECT_EQ(spliced, out) << "FindNames and SpliceNames differ from ReplaceNames";
	return out;
}

TEST(ReplaceNames, ReplacesWholeNames)
{
	EXPECT_EQ(Replace("SELECT count(*) AS p1 FROM public.t_101", "t_101", "t_1024"),
	          "SELECT count(*) AS p1 FROM public.t_1024");
	EXPECT_EQ(Replace("SELECT t_101.a FROM s.t_101 WHERE t_101.a = 1", "t_101", "t_7"),
	          "SELECT t_7.a FROM s.t_7 WHERE t_7.a = 1");
}

TEST(ReplaceNames, LeavesOtherNamesAndParts)
{
	EXPECT_EQ(Replace("SELECT t_1010, xt_101, t_101x, t_101$ FROM t_101", "t_101", "t_2"),
	          "SELECT t_1010, xt_101, t_101x, t_101$ FROM t_2");
	EXPECT_EQ(Replace("SELECT 1t_101 FROM t_101", "t_101", "t_2"), "SELECT 1t_101 FROM t_2");
}

TEST(ReplaceNames, LeavesStringLiterals)
{
	EXPECT_EQ(Replace("SELECT 't_101', 'it''s t_101', E'\\' t_101' FROM t_101", "t_101", "t_2"),
	          "SELECT 't_101', 'it''s t_101', E'\\' t_101' FROM t_2");
}

TEST(ReplaceNames, QuotedNamesWhole)
{
	EXPECT_EQ(Replace("SELECT \"T x_101\".a FROM \"S\".\"T x_101\", \"T x_101a\"", "\"T x_101\"", "\"T x_9\""),
	          "SELECT \"T x_9\".a FROM \"S\".\"T x_9\", \"T x_101a\"");
	EXPECT_EQ(Replace("SELECT \"a\"\"t_1\" FROM \"a\"\"t_1\"", "\"a\"\"t_1\"", "\"a\"\"t_2\""),
	          "SELECT \"a\"\"t_2\" FROM \"a\"\"t_2\"");
}

TEST(ReplaceNames, SeveralNamesInOnePass)
{
	EXPECT_EQ(Replace("SELECT * FROM a_1 JOIN b_2 ON a_1.k = b_2.k", "a_1", "b_2", "b_2", "a_1"),
	          "SELECT * FROM b_2 JOIN a_1 ON b_2.k = a_1.k");
}

TEST(ReplaceNames, TruncatesToTheBuffer)
{
	const char *from[] = {"t_1"};
	const char *to[] = {"t_100"};
	char out[8];
	EXPECT_EQ(ReplaceNames("FROM t_1", from, to, 1, out, sizeof(out)), 10u);
	EXPECT_STREQ(out, "FROM t_");
}

using fdwshard::core::FindSoleFromItem;
using fdwshard::core::FromItem;

/* The FROM item of sql's only "name" in schema as "offset length alias", or "none". */
std::string
SoleFrom(const char *sql, const char *name, const char *schema)
{
	const char *from[] = {name};
	fdwshard::core::NamePlace place;
	if (FindNames(sql, from, 1, &place, 1) != 1)
		return "not one place";
	FromItem item;
	if (!FindSoleFromItem(sql, place, schema, &item))
		return "none";
	return std::string(sql + item.offset, item.length) + (item.has_alias ? " +alias" : "");
}

TEST(FindSoleFromItem, TableThenClauseOrEnd)
{
	EXPECT_EQ(SoleFrom("SELECT count(*) AS p1 FROM public.t_1", "t_1", "public"), "public.t_1");
	EXPECT_EQ(SoleFrom("SELECT v AS g1, count(*) AS p1 FROM public.t_1 WHERE (v > 0) GROUP BY v", "t_1", "public"),
	          "public.t_1");
	EXPECT_EQ(SoleFrom("SELECT id AS c1 FROM public.t_1 ORDER BY id LIMIT '2'::bigint", "t_1", "public"), "public.t_1");
	EXPECT_EQ(SoleFrom("SELECT a FROM \"My \"\"S\".\"T 1\" HAVING (count(*) > 1)", "\"T 1\"", "\"My \"\"S\""),
	          "\"My \"\"S\".\"T 1\"");
}

TEST(FindSoleFromItem, OneAlias)
{
	EXPECT_EQ(SoleFrom("SELECT count(*) AS p1 FROM public.t_1 t WHERE (v < 5)", "t_1", "public"), "public.t_1 +alias");
	EXPECT_EQ(SoleFrom("SELECT count(*) AS p1 FROM public.t_1 \"a \"\"b\"", "t_1", "public"), "public.t_1 +alias");
}

TEST(FindSoleFromItem, OtherShapesAreNot)
{
	/* Row locks, column aliases, sampling, another schema, ONLY, a subquery's FROM. */
	EXPECT_EQ(SoleFrom("SELECT a FROM public.t_1 FOR UPDATE", "t_1", "public"), "none");
	EXPECT_EQ(SoleFrom("SELECT x FROM public.t_1 t(x, y)", "t_1", "public"), "none");
	EXPECT_EQ(SoleFrom("SELECT a FROM public.t_1 TABLESAMPLE system ('1')", "t_1", "public"), "none");
	EXPECT_EQ(SoleFrom("SELECT a FROM other.t_1", "t_1", "public"), "none");
	EXPECT_EQ(SoleFrom("SELECT a FROM ONLY public.t_1", "t_1", "public"), "none");
	EXPECT_EQ(SoleFrom("SELECT a FROM f() WHERE b IN (SELECT c FROM public.t_1)", "t_1", "public"), "none");
	EXPECT_EQ(SoleFrom("SELECT ' FROM public.t_1' FROM public.t_1", "t_1", "public"), "public.t_1");
}

} // namespace
