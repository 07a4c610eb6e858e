/* Serialises create_distributed_table and undistribute_table on one table (see operations/table_lock.h). */
#include "fdwshard/operations/table_lock.h"

#include "fdwshard/catalog/metadata.h"
#include "fdwshard/commands/shard_ddl.h"

namespace fdwshard
{

void
LockTableToReplace(Oid relid, bool distributing)
{
	const char *function = distributing ? "create_distributed_table" : "undistribute_table";
	char *name = get_rel_name(relid);
	Oid namespace_oid = get_rel_namespace(relid);

	if (name == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
	/* PostgreSQL's own rule and message, checked before waiting for the lock as ALTER TABLE does. */
	commands::RequireTableOwner(relid);

	LockRelationOid(relid, AccessExclusiveLock);
	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
	{
		commands::RequireTableOwner(relid); /* the owner may have changed while we waited */
		return;
	}

	/* Another session replaced the table while this one waited: say what its name holds now. */
	UnlockRelationOid(relid, AccessExclusiveLock);
	Oid current = get_relname_relid(name, namespace_oid);
	bool is_distributed = OidIsValid(current) && catalog::IsDistributedTable(current);
	if (distributing && is_distributed)
		ereport(ERROR,
		        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("table \"%s\" is already distributed", name),
		         errdetail("Another session distributed it while this one waited for its lock.")));
	if (!distributing && OidIsValid(current) && !is_distributed)
		ereport(ERROR,
		        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("table \"%s\" is not distributed", name),
		         errdetail("Another session undistributed it while this one waited for its lock.")));
	if (!OidIsValid(current))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("table \"%s\" was dropped by another session", name),
		                errdetail("Another session dropped or renamed it while this one waited for its lock.")));
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
	                errmsg("table \"%s\" was replaced by another session", name),
	                errdetail("Another session %s it while this one waited for its lock.",
	                          is_distributed ? "distributed" : "undistributed"),
	                errhint("Call %s again if it is still wanted.", function)));
}

} // namespace fdwshard
