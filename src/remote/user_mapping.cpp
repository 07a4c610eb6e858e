/* Early, explained refusals when the current user cannot reach a worker (see remote/user_mapping.h). */
#include "fdwshard/remote/user_mapping.h"

namespace fdwshard::remote
{

namespace
{

bool
HasMapping(Oid userid, Oid serverid)
{
	return SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid), ObjectIdGetDatum(serverid));
}

} // namespace

void
RequireUserMapping(Oid serverid)
{
	Oid userid = GetUserId();

	/* The lookup GetUserMapping makes: the user's own mapping, else the PUBLIC one. */
	if (HasMapping(userid, serverid) || HasMapping(InvalidOid, serverid))
		return;
	const char *role = quote_identifier(GetUserNameFromId(userid, false));
	const char *server = quote_identifier(GetForeignServer(serverid)->servername);
	ereport(ERROR,
	        (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("role %s has no user mapping for server %s", role, server),
	         errdetail("fdwshard reaches the shards on a worker through postgres_fdw as the current user."),
	         errhint("Create one as a superuser: CREATE USER MAPPING FOR %s SERVER %s OPTIONS (user '...', "
	                 "password '...');",
	                 role, server)));
}

void
RequireServerUsage(Oid serverid)
{
	if (pg_foreign_server_aclcheck(serverid, GetUserId(), ACL_USAGE) == ACLCHECK_OK)
		return;
	const char *role = quote_identifier(GetUserNameFromId(GetUserId(), false));
	const char *server = quote_identifier(GetForeignServer(serverid)->servername);
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for foreign server %s", server),
	                errdetail("The shards on a worker are foreign tables on that worker's server."),
	                errhint("Grant it as a superuser: GRANT USAGE ON FOREIGN SERVER %s TO %s;", server, role)));
}

} // namespace fdwshard::remote
