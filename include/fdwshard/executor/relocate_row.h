/* The row trigger that moves rows whose distribution column changed out of their shard. */
#pragma once

namespace fdwshard
{

/* Name of the AFTER UPDATE OF <distribution column> trigger on every distributed table. */
constexpr const char *kRelocateTriggerName = "fdwshard_relocate_row";

} // namespace fdwshard
