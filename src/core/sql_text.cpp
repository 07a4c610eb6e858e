/* Whitespace collapsing for deparsed SQL (see core/sql_text.h). */
#include "fdwshard/core/sql_text.h"

namespace fdwshard::core
{

namespace
{

bool
IsSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

} // namespace

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
