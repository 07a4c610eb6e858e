/* A worker's result rows as tuples (see executor/result_row.h), for every scan that reads them. */
#include "fdwshard/executor/result_row.h"

namespace fdwshard::executor
{

void
InitRowInput(RowInput *input, TupleDesc desc)
{
	input->in_functions = (FmgrInfo *) palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1));
	input->typioparams = (Oid *) palloc0(sizeof(Oid) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Oid input_function;
		getTypeInputInfo(TupleDescAttr(desc, i)->atttypid, &input_function, &input->typioparams[i]);
		fmgr_info(input_function, &input->in_functions[i]);
	}
}

void
ReadResultRow(const RowInput *input, PGresult *result, int row, TupleTableSlot *slot)
{
	TupleDesc desc = slot->tts_tupleDescriptor;
	for (int i = 0; i < desc->natts; i++)
	{
		bool is_null = PQgetisnull(result, row, i);
		slot->tts_isnull[i] = is_null;
		/* Called for NULL too: a domain's input function checks its NOT NULL constraint. */
		slot->tts_values[i] = InputFunctionCall(&input->in_functions[i], is_null ? NULL : PQgetvalue(result, row, i),
		                                        input->typioparams[i], TupleDescAttr(desc, i)->atttypmod);
	}
}

} // namespace fdwshard::executor
