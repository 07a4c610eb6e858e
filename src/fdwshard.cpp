/* Module entry: refuses to load outside shared_preload_libraries, then starts each subsystem. */
#include "fdwshard/catalog/metadata.h"
#include "fdwshard/catalog/metadata_cache.h"
#include "fdwshard/executor/deferred_plan.h"
#include "fdwshard/executor/distributed_insert.h"
#include "fdwshard/executor/multi_shard_modify.h"
#include "fdwshard/executor/partial_aggregate.h"
#include "fdwshard/executor/remote_statement.h"
#include "fdwshard/executor/routed_explain.h"
#include "fdwshard/executor/task_run.h"
#include "fdwshard/commands/utility_hook.h"
#include "fdwshard/hash/datum_hash.h"
#include "fdwshard/operations/move_progress.h"
#include "fdwshard/planner/planner.h"
#include "fdwshard/remote/connection_budget.h"
#include "fdwshard/remote/node_health.h"
#include "fdwshard/remote/idle_connections.h"
#include "fdwshard/remote/own_connection.h"
#include "fdwshard/remote/node_wait.h"
#include "fdwshard/transaction/recovery_worker.h"
#include "fdwshard/transaction/remote_isolation.h"
#include "fdwshard/transaction/two_phase.h"

extern "C"
{
	PG_MODULE_MAGIC;

	void _PG_init(void);

	void _PG_init(void)
	{
		if (!process_shared_preload_libraries_in_progress)
			ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			                errmsg("fdwshard must be loaded via shared_preload_libraries"),
			                errhint("Add fdwshard to shared_preload_libraries in postgresql.conf on the coordinator "
			                        "and restart PostgreSQL.")));

		fdwshard::catalog::InitCatalog();
		fdwshard::catalog::InitMetadataCache();
		fdwshard::InitDatumHash();
		fdwshard::InitPlanner();
		fdwshard::executor::InitRemoteStatement();
		fdwshard::executor::InitRoutedExplain();
		fdwshard::executor::InitMultiShardModify();
		fdwshard::executor::InitDistributedInsert();
		fdwshard::executor::InitPartialAggregate();
		fdwshard::executor::InitTaskRun();
		fdwshard::deferred::InitDeferredPlans();
		fdwshard::remote::InitOwnConnections();
		fdwshard::remote::InitConnectionBudget();
		fdwshard::remote::InitIdleConnections();
		fdwshard::remote::InitNodeHealth();
		fdwshard::remote::InitNodeWait();
		fdwshard::transaction::InitRemoteIsolation();
		fdwshard::transaction::InitRecoveryWorker();
		fdwshard::transaction::InitTwoPhaseCommit();
		fdwshard::commands::InitUtilityHook();
		fdwshard::operations::InitMoveProgress();
	}
}
