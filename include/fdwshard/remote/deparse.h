/* SQL text sent to workers and run locally, built only from quoted names and literals. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::remote
{

/* schema.name, each part quoted as needed. */
const char *QualifiedName(const char *schema, const char *name);

/* A foreign table's table on its server, quoted: its schema_name and table_name options, else its own names. */
const char *ForeignTableRemoteName(Oid relid);

/* schema.name of a relation by OID, always schema-qualified. */
const char *QualifiedRelationName(Oid relid);

/*
 * A role as a remote statement must name it: PUBLIC, or the role's quoted name. CURRENT_USER,
 * CURRENT_ROLE and SESSION_USER are resolved here, on the coordinator: on a worker they would mean
 * the user of the user mapping.
 */
const char *QuotedRoleName(const RoleSpec *role);

/* name_suffix, truncated so it fits in NAMEDATALEN-1 bytes; used for shard and shard-index names. */
char *NameWithSuffix(const char *name, int64 suffix);

/*
 * CREATE TABLE schema.name (...) for a shard table on a worker: the columns, collations and NOT
 * NULL of the logical table and its CHECK constraints; no defaults (they run on the coordinator).
 */
char *ShardTableDefinition(Oid logical_relid, const char *schema, const char *shard_name);

/* Its "(...)" part, the same for every shard of the table: built once for a batch of shards. */
char *ShardTableColumns(Oid logical_relid);

/* The column list of relid for INSERT ... SELECT: every column except stored generated ones. */
char *InsertableColumnList(Oid relid);

/* Deparsing with search_path = pg_catalog, so every name PostgreSQL's deparser prints is schema-qualified. */
int BeginQualifiedDeparse(void);
void EndQualifiedDeparse(int nest_level);

} // namespace fdwshard::remote
