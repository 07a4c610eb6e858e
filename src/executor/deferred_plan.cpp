/*
 * Deferred routing for generic plans (see executor/deferred_plan.h). The generic plan is a
 * marker: a custom scan holding the statement. Our ExecutorStart hook replaces it with the plan
 * for the shard the parameter hashes to, from a backend-local cache keyed by (marker, shard
 * index). Cached plans are dropped when an invalidation names one of their relations, a function,
 * a type or a schema; a dropped plan's memory is freed at the end of the transaction, since an
 * execution in progress may still use it.
 */
#include "fdwshard/executor/deferred_plan.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/executor/routed_explain.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/transaction/whole_transaction.h"
#include "fdwshard/planner/tree_walk.h"

namespace fdwshard::deferred
{

namespace
{

/* Positions in the marker's CustomScan.custom_private. */
enum DeferredPrivate
{
	kMarkerId,
	kQuery,
	kParamId,
	kPinOids, /* parameter type, collation, distributed table */
	kCursorOptions
};

struct PlanKey
{
	int32 marker_id;
	int32 shard_index; /* -1: the parameter is NULL or the table is gone: the ordinary plan */
};

struct RoutedPlan
{
	PlanKey key; /* hash key, first */
	bool valid;
	MemoryContext context; /* holds plan and relids */
	PlannedStmt *plan;
};

/* Backend-lifetime state, owned by this file. The cache lives in a child of CacheMemoryContext. */
MemoryContext plans_context = NULL;
HTAB *routed_plans = NULL;
List *graveyard = NIL; /* contexts of dropped plans, deleted at transaction end */
int32 next_marker_id = 0;
uint64 invalidation_count = 0;
ExecutorStart_hook_type prev_executor_start = NULL;

constexpr long kMaxRoutedPlans = 20000;

extern const CustomScanMethods kDeferredScanMethods;

void
EnsureCache()
{
	if (routed_plans != NULL)
		return;
	plans_context = AllocSetContextCreate(CacheMemoryContext, "fdwshard routed plans", ALLOCSET_DEFAULT_SIZES);
	HASHCTL ctl;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PlanKey);
	ctl.entrysize = sizeof(RoutedPlan);
	ctl.hcxt = plans_context;
	routed_plans = hash_create("fdwshard routed plans", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

void
Bury(RoutedPlan *entry)
{
	if (entry->context != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(plans_context);
		graveyard = lappend(graveyard, entry->context);
		MemoryContextSwitchTo(old);
	}
	entry->context = NULL;
	entry->plan = NULL;
	entry->valid = false;
}

void
InvalidateMatching(Oid relid)
{
	HASH_SEQ_STATUS status;
	RoutedPlan *entry;

	if (routed_plans == NULL)
		return;
	invalidation_count++;
	hash_seq_init(&status, routed_plans);
	while ((entry = (RoutedPlan *) hash_seq_search(&status)) != NULL)
		if (entry->valid && (!OidIsValid(relid) || list_member_oid(entry->plan->relationOids, relid)))
			entry->valid = false;
}

void
RelcacheCallback(Datum, Oid relid)
{
	InvalidateMatching(relid);
}

void
SyscacheCallback(Datum, int, uint32)
{
	InvalidateMatching(InvalidOid);
}

void
XactCallback(XactEvent event, void *)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_COMMIT &&
	    event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
		return;
	if (routed_plans != NULL && hash_get_num_entries(routed_plans) > kMaxRoutedPlans)
	{
		/* Markers of plans the plan cache let go leave entries behind: start over now and then. */
		HASH_SEQ_STATUS status;
		RoutedPlan *entry;
		hash_seq_init(&status, routed_plans);
		while ((entry = (RoutedPlan *) hash_seq_search(&status)) != NULL)
		{
			Bury(entry);
			hash_search(routed_plans, &entry->key, HASH_REMOVE, NULL);
		}
	}
	ListCell *cell;
	foreach (cell, graveyard)
		MemoryContextDelete((MemoryContext) lfirst(cell));
	list_free(graveyard);
	graveyard = NIL;
}

/* Plans query for shard_index (or the ordinary way for -1) and caches it under key. */
RoutedPlan *
BuildRoutedPlan(PlanKey key, Query *query, int cursor_options)
{
	bool found;

	EnsureCache();
	RoutedPlan *entry = (RoutedPlan *) hash_search(routed_plans, &key, HASH_ENTER, &found);
	if (found)
		Bury(entry);
	else
	{
		entry->context = NULL;
		entry->plan = NULL;
		entry->valid = false;
	}

	MemoryContext planning = AllocSetContextCreate(CurrentMemoryContext, "fdwshard routing", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(planning);
	uint64 before = invalidation_count;

	PlannedStmt *plan = NULL;
	if (key.shard_index >= 0)
	{
		router::RouteKind kind;
		plan = router::RouteQuery(query, cursor_options, NULL, NULL, NULL, &kind, key.shard_index);
	}
	if (plan == NULL)
		plan = PlanOrdinary((Query *) copyObject(query), NULL, cursor_options, NULL, true);

	MemoryContext context = AllocSetContextCreate(plans_context, "fdwshard routed plan", ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(context);
	entry->plan = (PlannedStmt *) copyObject(plan);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(planning);

	entry->context = context;
	entry->valid = invalidation_count == before;
	return entry;
}

void
LockPlanRelations(PlannedStmt *plan)
{
	ListCell *cell;
	foreach (cell, plan->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind == RTE_RELATION)
			LockRelationOid(rte->relid, rte->rellockmode);
	}
}

bool
IsMarker(PlannedStmt *stmt)
{
	return stmt != NULL && stmt->planTree != NULL && IsA(stmt->planTree, CustomScan) &&
	       ((CustomScan *) stmt->planTree)->methods == &kDeferredScanMethods;
}

/* The plan to run for this execution of marker, with its relations locked. */
PlannedStmt *
ResolveMarker(PlannedStmt *marker, ParamListInfo params)
{
	List *items = ((CustomScan *) marker->planTree)->custom_private;
	PlanKey key;
	key.marker_id = intVal(list_nth(items, kMarkerId));
	key.shard_index = -1;

	List *pin = (List *) list_nth(items, kPinOids);
	Datum value;
	bool is_null;
	Oid type;
	if (router::ParamValue(params, intVal(list_nth(items, kParamId)), false, &value, &is_null, &type) && !is_null)
	{
		const catalog::CachedTable *table = catalog::LookupDistributedTable(list_nth_oid(pin, 2));
		if (table != NULL)
			key.shard_index = catalog::ShardIndexForHash(table, DatumHash(value, type, list_nth_oid(pin, 1)));
	}

	EnsureCache();
	RoutedPlan *entry = (RoutedPlan *) hash_search(routed_plans, &key, HASH_FIND, NULL);
	if (entry != NULL && entry->plan != NULL)
	{
		/* Taking the locks processes pending invalidations, which may drop the entry. */
		LockPlanRelations(entry->plan);
		if (entry->valid)
			return entry->plan;
	}
	entry = BuildRoutedPlan(key, (Query *) list_nth(items, kQuery), intVal(list_nth(items, kCursorOptions)));
	LockPlanRelations(entry->plan);
	elog(DEBUG2, "fdwshard: planned shard index %d of a generic plan", key.shard_index);
	return entry->plan;
}

void
ExecutorStartHook(QueryDesc *query_desc, int eflags)
{
	if (IsMarker(query_desc->plannedstmt))
	{
		PlannedStmt *plan = pg::Entry([&] { return ResolveMarker(query_desc->plannedstmt, query_desc->params); });
		plan->queryId = query_desc->plannedstmt->queryId;
		transaction::NoteSwappedPlan(query_desc->plannedstmt, plan);
		query_desc->plannedstmt = plan;
	}
	/* EXPLAIN and instrumented runs (EXPLAIN ANALYZE, auto_explain) show where a routed plan runs. */
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) || query_desc->instrument_options != 0)
		query_desc->plannedstmt =
		    pg::Entry([&] { return executor::WrapRoutedPlanForExplain(query_desc->plannedstmt); });
	if (prev_executor_start != NULL)
		prev_executor_start(query_desc, eflags);
	else
		standard_ExecutorStart(query_desc, eflags);
}

Node *
CreateMarkerState(CustomScan *)
{
	ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
	                errmsg("fdwshard generic plan started without fdwshard's ExecutorStart hook"),
	                errhint("Another extension's ExecutorStart hook does not call the previous hook.")));
}

const CustomScanMethods kDeferredScanMethods = {
    "FdwShard Deferred Router",
    CreateMarkerState,
};

} // namespace

PlannedStmt *
MakeDeferredPlan(Query *parse, int cursor_options, const router::DeferredPin &pin)
{
	Query *query = (Query *) copyObject(parse);
	int32 marker_id = ++next_marker_id;

	/* Shard 0's plan, planned now, gives the generic plan its cost and warms the cache. */
	PlanKey key = {marker_id, 0};
	PlannedStmt *first = BuildRoutedPlan(key, query, cursor_options)->plan;

	List *output = query->commandType == CMD_SELECT ? query->targetList : query->returningList;
	List *tlist = NIL;
	ListCell *cell;
	foreach (cell, output)
		if (!((TargetEntry *) lfirst(cell))->resjunk)
			tlist = lappend(tlist, copyObject(lfirst(cell)));

	CustomScan *scan = makeNode(CustomScan);
	scan->scan.plan.targetlist = tlist; /* describes the result (PortalStart reads it); never evaluated */
	scan->scan.plan.startup_cost = first->planTree->startup_cost;
	scan->scan.plan.total_cost = first->planTree->total_cost;
	scan->scan.plan.plan_rows = first->planTree->plan_rows;
	scan->scan.plan.plan_width = first->planTree->plan_width;
	scan->methods = &kDeferredScanMethods;
	scan->custom_private = list_make5(makeInteger(marker_id), query, makeInteger(pin.paramid),
	                                  list_make3_oid(pin.type, pin.collation, pin.relid), makeInteger(cursor_options));

	PlannedStmt *stmt = makeNode(PlannedStmt);
	stmt->commandType = query->commandType;
	stmt->queryId = query->queryId;
	stmt->hasReturning = query->returningList != NIL;
	stmt->hasModifyingCTE = query->hasModifyingCTE;
	stmt->canSetTag = query->canSetTag;
	stmt->planTree = (Plan *) scan;
	stmt->rtable = RelationRtes(query, false);
	foreach (cell, stmt->rtable)
	{
		((RangeTblEntry *) lfirst(cell))->inh = false;
		stmt->relationOids = lappend_oid(stmt->relationOids, ((RangeTblEntry *) lfirst(cell))->relid);
	}
	stmt->stmt_location = query->stmt_location;
	stmt->stmt_len = query->stmt_len;
	elog(DEBUG1, "fdwshard: generic plan routed by parameter $%d", pin.paramid);
	return stmt;
}

void
InitDeferredPlans(void)
{
	RegisterCustomScanMethods(&kDeferredScanMethods);
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = ExecutorStartHook;
	CacheRegisterRelcacheCallback(RelcacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, SyscacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(TYPEOID, SyscacheCallback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, SyscacheCallback, (Datum) 0);
	RegisterXactCallback(XactCallback, NULL);
}

} // namespace fdwshard::deferred
