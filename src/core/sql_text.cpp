/* Whitespace collapsing and name replacement for deparsed SQL (see core/sql_text.h). */
#include "fdwshard/core/sql_text.h"

#include <cstring>

namespace fdwshard::core
{

namespace
{

bool
IsSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool
IsNameStart(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (unsigned char) c >= 0x80;
}

bool
IsNamePart(char c)
{
	return IsNameStart(c) || (c >= '0' && c <= '9') || c == '$';
}

/* Appends length bytes of text to out while there is room; counts them all. */
void
Emit(const char *text, size_t length, char *out, size_t out_size, size_t *written)
{
	size_t room = *written + 1 < out_size ? out_size - 1 - *written : 0;
	if (room > 0)
		memcpy(out + *written, text, length < room ? length : room);
	*written += length;
}

/*
 * Calls on_token(offset, length, name) for each token of sql in order, covering all of it: a
 * string literal, a quoted identifier, an identifier or one other character; name is the index
 * of the from entry an identifier or quoted identifier equals, or -1.
 */
template <typename OnToken>
void
ScanTokens(const char *sql, const char *const *from, int count, OnToken on_token)
{
	size_t in = 0;
	while (sql[in] != '\0')
	{
		char c = sql[in];
		size_t end = in + 1;
		if (c == '\'')
		{
			/* A string literal, kept as it is: '' inside, and backslash escapes in E'...'. */
			bool escape_string = in > 0 && (sql[in - 1] == 'E' || sql[in - 1] == 'e');
			while (sql[end] != '\0')
			{
				if (escape_string && sql[end] == '\\' && sql[end + 1] != '\0')
					end += 2;
				else if (sql[end] == '\'' && sql[end + 1] == '\'')
					end += 2;
				else if (sql[end++] == '\'')
					break;
			}
			on_token(in, end - in, -1);
			in = end;
			continue;
		}
		if (c == '"')
		{
			while (sql[end] != '\0')
			{
				if (sql[end] == '"' && sql[end + 1] == '"')
					end += 2;
				else if (sql[end++] == '"')
					break;
			}
		}
		else if (IsNamePart(c))
		{
			while (IsNamePart(sql[end]))
				end++;
		}
		int name = -1;
		for (int i = 0; i < count && name < 0 && (c == '"' || IsNameStart(c)); i++)
			if (strlen(from[i]) == end - in && strncmp(sql + in, from[i], end - in) == 0)
				name = i;
		on_token(in, end - in, name);
		in = end;
	}
}

void
Terminate(char *out, size_t out_size, size_t written)
{
	if (out_size > 0)
		out[written < out_size ? written : out_size - 1] = '\0';
}

} // namespace

size_t
ReplaceNames(const char *sql, const char *const *from, const char *const *to, int count, char *out, size_t out_size)
{
	size_t written = 0;
	ScanTokens(sql, from, count,
	           [&](size_t offset, size_t length, int name)
	           {
		           if (name >= 0)
			           Emit(to[name], strlen(to[name]), out, out_size, &written);
		           else
			           Emit(sql + offset, length, out, out_size, &written);
	           });
	Terminate(out, out_size, written);
	return written;
}

int
FindNames(const char *sql, const char *const *from, int count, NamePlace *places, int max_places)
{
	int found = 0;
	ScanTokens(sql, from, count,
	           [&](size_t offset, size_t length, int name)
	           {
		           if (name < 0)
			           return;
		           if (found < max_places)
			           places[found] = NamePlace{offset, length, name};
		           found++;
	           });
	return found;
}

size_t
SpliceNames(const char *sql, const NamePlace *places, int place_count, const char *const *to, char *out,
            size_t out_size)
{
	size_t written = 0;
	size_t in = 0;
	for (int i = 0; i < place_count; i++)
	{
		Emit(sql + in, places[i].offset - in, out, out_size, &written);
		Emit(to[places[i].name], strlen(to[places[i].name]), out, out_size, &written);
		in = places[i].offset + places[i].length;
	}
	Emit(sql + in, strlen(sql + in), out, out_size, &written);
	Terminate(out, out_size, written);
	return written;
}

namespace
{

/* Whether text starts with word as a whole word. */
bool
StartsWithWord(const char *text, const char *word)
{
	size_t length = strlen(word);
	return strncmp(text, word, length) == 0 && !IsNamePart(text[length]);
}

/* Whether rest is the end of a one-table SELECT after its FROM item: nothing, or a clause. */
bool
EndOrClause(const char *rest)
{
	static const char *const kClauses[] = {"WHERE",  "GROUP BY", "ORDER BY", "LIMIT",
	                                       "OFFSET", "HAVING",   "WINDOW",   "FETCH"};
	if (*rest == '\0')
		return true;
	if (*rest != ' ')
		return false;
	for (const char *clause : kClauses)
		if (StartsWithWord(rest + 1, clause))
			return true;
	return false;
}

/* Parenthesis depth at offset of sql, outside string literals and quoted identifiers. */
int
DepthAt(const char *sql, size_t offset)
{
	int depth = 0;
	ScanTokens(sql, nullptr, 0,
	           [&](size_t at, size_t length, int)
	           {
		           if (at < offset && length == 1)
			           depth += sql[at] == '(' ? 1 : sql[at] == ')' ? -1 : 0;
	           });
	return depth;
}

} // namespace

bool
FindSoleFromItem(const char *sql, const NamePlace &place, const char *schema, FromItem *item)
{
	static const char kFrom[] = " FROM ";
	size_t schema_length = strlen(schema);
	size_t prefix = sizeof(kFrom) - 1 + schema_length + 1;
	if (place.offset < prefix)
		return false;
	size_t offset = place.offset - schema_length - 1;
	if (strncmp(sql + offset - (sizeof(kFrom) - 1), kFrom, sizeof(kFrom) - 1) != 0 ||
	    strncmp(sql + offset, schema, schema_length) != 0 || sql[place.offset - 1] != '.' || DepthAt(sql, offset) != 0)
		return false;

	const char *rest = sql + place.offset + place.length;
	bool has_alias = false;
	if (!EndOrClause(rest))
	{
		/* One alias, a name or a quoted name, then the end or a clause. */
		const char *alias = rest + 1;
		const char *end = alias;
		if (*rest != ' ' || !(IsNameStart(*alias) || *alias == '"'))
			return false;
		if (*alias == '"')
		{
			end++;
			while (*end != '\0' && !(*end == '"' && end[1] != '"'))
				end += *end == '"' ? 2 : 1;
			if (*end++ != '"')
				return false;
		}
		else
			while (IsNamePart(*end))
				end++;
		if (!EndOrClause(end))
			return false;
		has_alias = true;
	}
	*item = FromItem{offset, place.offset + place.length - offset, has_alias};
	return true;
}

size_t
CollapseLineBreaks(char *sql)
{
	size_t out = 0;
	char quote = 0;         /* ' or " while inside a literal or identifier */
	bool backslash = false; /* inside E'...', a backslash escapes the next character */
	bool escape_string = false;

	for (size_t in = 0; sql[in] != '\0'; in++)
	{
		char c = sql[in];
		if (quote != 0)
		{
			sql[out++] = c;
			if (backslash)
				backslash = false;
			else if (escape_string && c == '\\')
				backslash = true;
			else if (c == quote)
				quote = 0; /* a doubled quote reopens at once on the next character */
			continue;
		}
		if (c == '\'' || c == '"')
		{
			escape_string = c == '\'' && in > 0 && (sql[in - 1] == 'E' || sql[in - 1] == 'e');
			quote = c;
			sql[out++] = c;
			continue;
		}
		if (IsSpace(c))
		{
			size_t end = in;
			bool line_break = false;
			while (IsSpace(sql[end]))
				line_break = line_break || sql[end] == '\n' || sql[end] == '\r', end++;
			if (out == 0 || sql[end] == '\0')
			{
				in = end - 1; /* leading or trailing: drop */
				continue;
			}
			if (line_break)
			{
				sql[out++] = ' ';
				in = end - 1;
				continue;
			}
		}
		sql[out++] = c;
	}
	sql[out] = '\0';
	return out;
}

} // namespace fdwshard::core
