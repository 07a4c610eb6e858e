/* fdwshard's structs in shared memory (see shared_memory.h). */
#include "fdwshard/shared_memory.h"

extern "C"
{
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

namespace fdwshard
{

namespace
{

struct SharedStruct
{
	const char *name;
	Size size;
	SharedStructInit init;
	void **state;
};

constexpr int kMaxStructs = 8;
SharedStruct structs[kMaxStructs];
int struct_count = 0;
shmem_request_hook_type prev_shmem_request = NULL;
shmem_startup_hook_type prev_shmem_startup = NULL;

void
ShmemRequest(void)
{
	if (prev_shmem_request != NULL)
		prev_shmem_request();
	for (int i = 0; i < struct_count; i++)
	{
		RequestAddinShmemSpace(MAXALIGN(structs[i].size));
		RequestNamedLWLockTranche(structs[i].name, 1);
	}
}

void
ShmemStartup(void)
{
	if (prev_shmem_startup != NULL)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	for (int i = 0; i < struct_count; i++)
	{
		bool found;
		void *state = ShmemInitStruct(structs[i].name, structs[i].size, &found);
		if (!found)
		{
			memset(state, 0, structs[i].size);
			structs[i].init(state, &(GetNamedLWLockTranche(structs[i].name))->lock);
		}
		*structs[i].state = state;
	}
	LWLockRelease(AddinShmemInitLock);
}

} // namespace

void
RequestSharedStruct(const char *name, Size size, SharedStructInit init, void **state)
{
	if (struct_count == kMaxStructs)
		elog(ERROR, "fdwshard: too many shared memory structs");
	if (struct_count == 0)
	{
		prev_shmem_request = shmem_request_hook;
		shmem_request_hook = ShmemRequest;
		prev_shmem_startup = shmem_startup_hook;
		shmem_startup_hook = ShmemStartup;
	}
	structs[struct_count++] = SharedStruct{name, size, init, state};
}

} // namespace fdwshard
