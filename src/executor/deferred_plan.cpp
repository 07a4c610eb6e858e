/*
 * Deferred routing for generic plans (see executor/deferred_plan.h). The generic plan is a
 * marker: a custom scan holding the statement. Our ExecutorStart hook replaces it with the plan
 * for the shard the parameter hashes to, from a backend-local cache keyed by (marker, shard
 * index). Cached plans are dropped when an invalidation names one of their relations, a function,
 * a type or a schema; a dropped plan's memory is freed at the end of the transaction, since an
 * execution in progress may still use it. A shard index whose statement is shipped to a worker
 * gets its plan from another shard index's (the marker's model) by replacing the shards.
 */
#include "fdwshard/executor/deferred_plan.h"

#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/executor/routed_explain.h"
#include "fdwshard/guard.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/planner/shard_query.h"
#include "fdwshard/planner/tree_walk.h"
#include "fdwshard/transaction/whole_transaction.h"

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

/* Whether a marker's plans are derived from its model's (PlanShardIndex). */
enum class ModelState : int32
{
	kNone,      /* no model: the next shipped statement planned becomes it */
	kUnchecked, /* the next foreign shard index is planned and derived both, and the two compared */
	kChecked,   /* they were equal: foreign shard indexes are derived */
	kNever      /* they differed: every shard index is planned */
};

/* The model of a marker: the shard index whose shipped statement's plan others are derived from. */
struct MarkerModel
{
	int32 marker_id; /* hash key, first */
	int32 shard_index;
	ModelState state;
};

/* Backend-lifetime state, owned by this file. The cache lives in a child of CacheMemoryContext. */
MemoryContext plans_context = NULL;
HTAB *routed_plans = NULL;
HTAB *marker_models = NULL; /* MarkerModel by marker id, in plans_context; emptied with routed_plans */
List *graveyard = NIL;      /* contexts of dropped plans, deleted at transaction end */
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
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(MarkerModel);
	marker_models = hash_create("fdwshard marker models", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
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
		MarkerModel *model;
		hash_seq_init(&status, marker_models);
		while ((model = (MarkerModel *) hash_seq_search(&status)) != NULL)
			hash_search(marker_models, &model->marker_id, HASH_REMOVE, NULL);
	}
	ListCell *cell;
	foreach (cell, graveyard)
		MemoryContextDelete((MemoryContext) lfirst(cell));
	list_free(graveyard);
	graveyard = NIL;
}

/* Caches plan, copied into a context of its own, under key: valid unless an invalidation came since before. */
RoutedPlan *
CacheRoutedPlan(PlanKey key, PlannedStmt *plan, uint64 before)
{
	bool found;
	RoutedPlan *entry = (RoutedPlan *) hash_search(routed_plans, &key, HASH_ENTER, &found);
	if (found)
		Bury(entry);

	MemoryContext context = AllocSetContextCreate(plans_context, "fdwshard routed plan", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(context);
	entry->plan = (PlannedStmt *) copyObject(plan);
	MemoryContextSwitchTo(old);
	entry->context = context;
	entry->valid = invalidation_count == before;
	return entry;
}

/* Plans query for shard_index (or the ordinary way for -1) and caches it under key. */
RoutedPlan *
BuildRoutedPlan(PlanKey key, Query *query, int cursor_options)
{
	EnsureCache();
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

	MemoryContextSwitchTo(old);
	RoutedPlan *entry = CacheRoutedPlan(key, plan, before);
	MemoryContextDelete(planning);
	return entry;
}

/* to's element at from's position of relid, or relid when from does not hold it. */
Oid
ShardAtSamePosition(List *from, List *to, Oid relid)
{
	ListCell *from_cell;
	ListCell *to_cell;
	forboth(from_cell, from, to_cell, to)
	{
		if (lfirst_oid(from_cell) == relid)
			return lfirst_oid(to_cell);
	}
	return relid;
}

/*
 * The plan of target_index made from model, a shipped statement's plan of the same marker for
 * model_index: a copy with, for each distributed table in its range table, the table's shard at
 * model_index replaced by its shard at target_index (range table entries, relationOids, names in
 * the SQL text and EXPLAIN's shard names), and the worker of those shards. NULL when the shards
 * at target_index are not all foreign shards on one worker with the table's attribute numbers
 * (RouteQuery plans those another way), or model is not what this expects.
 */
PlannedStmt *
DerivePlan(const PlannedStmt *model, int model_index, int target_index)
{
	List *from = NIL;
	List *to = NIL;
	Oid serverid = InvalidOid;
	int32 nodeid = 0;
	ListCell *cell;

	/* The router leaves each distributed table in the range table, unexpanded, for permission checks. */
	foreach (cell, model->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_PARTITIONED_TABLE)
			continue;
		const catalog::CachedTable *table = catalog::LookupDistributedTable(rte->relid);
		if (table == NULL || rte->inh || model_index >= table->shard_count || target_index >= table->shard_count)
			return NULL;
		const catalog::CachedShard *model_shard = &table->shards[model_index];
		const catalog::CachedShard *shard = &table->shards[target_index];
		if (list_member_oid(from, model_shard->relid))
			continue; /* the same table twice */
		/* A model planned before a move holds another relation: it is being dropped, so is not derived from. */
		if (!list_member_oid(model->relationOids, model_shard->relid) || !OidIsValid(shard->serverid) ||
		    (OidIsValid(serverid) && (shard->serverid != serverid || shard->nodeid != nodeid)) ||
		    !catalog::ShardSameAttnos(table, target_index))
			return NULL;
		serverid = shard->serverid;
		nodeid = shard->nodeid;
		from = lappend_oid(from, model_shard->relid);
		to = lappend_oid(to, shard->relid);
	}
	if (from == NIL)
		return NULL;

	PlannedStmt *plan = (PlannedStmt *) copyObject(model);
	foreach (cell, plan->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
		if (rte->rtekind != RTE_RELATION || rte->relkind == RELKIND_PARTITIONED_TABLE)
			continue;
		/* A shipped statement reads nothing but its shards (and ON CONFLICT's EXCLUDED, which names the target's). */
		if (!list_member_oid(from, rte->relid))
			return NULL;
		rte->relid = ShardAtSamePosition(from, to, rte->relid);
	}
	foreach (cell, plan->relationOids)
		lfirst_oid(cell) = ShardAtSamePosition(from, to, lfirst_oid(cell));

	List *from_names = planner::QuotedNames(from);
	List *to_names = planner::QuotedNames(to);
	executor::RetargetRemoteStatement(
	    plan, planner::ReplaceShardNames(executor::RemoteStatementSql(model), from_names, to_names), serverid, nodeid,
	    planner::ReplaceShardNames(executor::RemoteStatementShardNames(model), from_names, to_names));
	return plan;
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

/*
 * key's plan derived from model (DerivePlan), its shards locked, cached. NULL when it cannot be
 * derived or an invalidation came meanwhile: then it is planned.
 */
RoutedPlan *
DeriveRoutedPlan(PlanKey key, const PlannedStmt *model, int model_index)
{
	MemoryContext deriving = AllocSetContextCreate(CurrentMemoryContext, "fdwshard routing", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(deriving);
	uint64 before = invalidation_count;
	RoutedPlan *entry = NULL;

	PlannedStmt *plan = DerivePlan(model, model_index, key.shard_index);
	if (plan != NULL)
	{
		/* As RouteQuery does, the shards are locked before their plan is used; that may bring invalidations. */
		LockPlanRelations(plan);
		if (invalidation_count == before)
		{
			MemoryContextSwitchTo(old);
			entry = CacheRoutedPlan(key, plan, before);
			elog(DEBUG2, "fdwshard: derived the plan of shard index %d from shard index %d's", key.shard_index,
			     model_index);
			if (message_level_is_interesting(DEBUG1))
			{
				/* What RouteQuery says of the plans it makes, in its order (the tables' entries follow the query's). */
				ListCell *cell;
				foreach (cell, plan->rtable)
				{
					RangeTblEntry *rte = (RangeTblEntry *) lfirst(cell);
					const catalog::CachedTable *table =
					    rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_PARTITIONED_TABLE
					        ? catalog::LookupDistributedTable(rte->relid)
					        : NULL;
					if (table != NULL)
						elog(DEBUG1, "fdwshard: routed %s to shard %s", get_rel_name(table->relid),
						     get_rel_name(table->shards[key.shard_index].relid));
				}
			}
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(deriving);
	return entry;
}

/* marker_id's model entry when plans may be derived from it: a valid plan of a shipped statement. */
RoutedPlan *
UsableModel(const MarkerModel *model)
{
	if (model->state != ModelState::kUnchecked && model->state != ModelState::kChecked)
		return NULL;
	PlanKey key = {model->marker_id, model->shard_index};
	RoutedPlan *entry = (RoutedPlan *) hash_search(routed_plans, &key, HASH_FIND, NULL);
	if (entry == NULL || !entry->valid || !executor::IsRemoteStatementPlan(entry->plan))
		return NULL;
	return entry;
}

/*
 * The plan of key's shard index, cached. Routing, deparsing and planning a shipped statement for
 * each new shard index took a third of the coordinator's CPU while new sessions first used 1024
 * shards; the plans of one marker's foreign shards differ only in the shards. So the first shipped statement planned is
 * the model, and as for multi-shard tasks (ShipOrPlanShardTask) the next foreign shard index is
 * planned and derived both: equal, the later ones are derived; else every one is planned. A
 * model invalidated is planned again and checked again.
 */
RoutedPlan *
PlanShardIndex(PlanKey key, Query *query, int cursor_options)
{
	EnsureCache();
	if (key.shard_index < 0)
		return BuildRoutedPlan(key, query, cursor_options);

	bool found;
	MarkerModel *marker = (MarkerModel *) hash_search(marker_models, &key.marker_id, HASH_ENTER, &found);
	if (!found)
	{
		marker->shard_index = -1;
		marker->state = ModelState::kNone;
	}
	int model_index = marker->shard_index;
	RoutedPlan *model = model_index != key.shard_index ? UsableModel(marker) : NULL;
	if (model != NULL && marker->state == ModelState::kChecked)
	{
		RoutedPlan *entry = DeriveRoutedPlan(key, model->plan, model_index);
		if (entry != NULL)
			return entry;
	}

	/* Planning may drop the model from the cache (not from memory before the transaction ends). */
	RoutedPlan *entry = BuildRoutedPlan(key, query, cursor_options);
	if (!entry->valid || !executor::IsRemoteStatementPlan(entry->plan) || marker->state == ModelState::kNever)
		return entry;
	if (model == NULL)
	{
		marker->shard_index = key.shard_index;
		marker->state = ModelState::kUnchecked;
	}
	else if (marker->state == ModelState::kUnchecked && model->valid)
	{
		MemoryContext checking = AllocSetContextCreate(CurrentMemoryContext, "fdwshard routing", ALLOCSET_SMALL_SIZES);
		MemoryContext old = MemoryContextSwitchTo(checking);
		PlannedStmt *derived = DerivePlan(model->plan, model_index, key.shard_index);
		if (derived != NULL)
		{
			bool same = strcmp(nodeToString(derived), nodeToString(entry->plan)) == 0;
			marker->state = same ? ModelState::kChecked : ModelState::kNever;
			if (same)
				elog(DEBUG2, "fdwshard: plans of shard indexes differ only in their shards, deriving them");
			else
				elog(DEBUG2, "fdwshard: plans of shard indexes differ by more than their shards, planning each");
		}
		MemoryContextSwitchTo(old);
		MemoryContextDelete(checking);
	}
	return entry;
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
	entry = PlanShardIndex(key, (Query *) list_nth(items, kQuery), intVal(list_nth(items, kCursorOptions)));
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
	PlannedStmt *first = PlanShardIndex(key, query, cursor_options)->plan;

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
