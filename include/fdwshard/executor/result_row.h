/* A worker's result rows as tuples: each column read through its type's input function. */
#pragma once

#include "fdwshard/pg.h"

namespace fdwshard::executor
{

/* The input functions of a scan tuple's columns, set up once per execution. */
struct RowInput
{
	FmgrInfo *in_functions;
	Oid *typioparams;
};

/* Looks up the input function of each column of desc, in the current memory context. */
void InitRowInput(RowInput *input, TupleDesc desc);

/*
 * Fills slot's values and nulls with row of result (its first natts columns of slot's
 * descriptor), allocating in the current memory context; the caller clears and stores the slot.
 */
void ReadResultRow(const RowInput *input, PGresult *result, int row, TupleTableSlot *slot);

} // namespace fdwshard::executor
