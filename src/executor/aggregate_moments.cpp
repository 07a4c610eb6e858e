/*
 * The coordinator's half of split variance and stddev: the fdwshard.numeric_moments_result and
 * fdwshard.float8_moments_result functions, which finish them from the sums the shards sent.
 */
#include "fdwshard/guard.h"
#include "fdwshard/pg.h"

namespace fdwshard::executor
{

namespace
{

/* numeric_moments_result's body: numeric_stddev_internal's arithmetic, at its scales. */
Datum
NumericMomentsResult(FunctionCallInfo fcinfo)
{
	int64 count = PG_GETARG_INT64(0);
	Numeric sum = PG_GETARG_NUMERIC(1);
	Numeric squares = PG_GETARG_NUMERIC(2);
	bool sample = PG_GETARG_BOOL(3);
	bool stddev = PG_GETARG_BOOL(4);

	/* A NaN or an infinity among the values makes the sums special, and the result NaN. */
	if (numeric_is_nan(sum) || numeric_is_inf(sum) || numeric_is_nan(squares) || numeric_is_inf(squares))
		PG_RETURN_DATUM(
		    DirectFunctionCall3(numeric_in, CStringGetDatum("NaN"), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	if (count <= (sample ? 1 : 0))
		PG_RETURN_NULL();

	Datum n = NumericGetDatum(int64_to_numeric(count));
	int sum_scale = DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(sum)));
	/* N * sum(x * x) - sum(x)^2, both at twice sum(x)'s scale (PostgreSQL's mul_var rscale). */
	Datum n_squares = DirectFunctionCall2(numeric_round, DirectFunctionCall2(numeric_mul, n, NumericGetDatum(squares)),
	                                      Int32GetDatum(2 * sum_scale));
	Datum numerator = DirectFunctionCall2(numeric_sub, n_squares,
	                                      DirectFunctionCall2(numeric_mul, NumericGetDatum(sum), NumericGetDatum(sum)));
	Datum zero = NumericGetDatum(int64_to_numeric(0));
	/* All values equal (the sums are exact: never below): PostgreSQL's 0, of scale 0. */
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, numerator, zero)) <= 0)
		PG_RETURN_DATUM(zero);
	Datum denominator =
	    DirectFunctionCall2(numeric_mul, n, NumericGetDatum(int64_to_numeric(sample ? count - 1 : count)));
	/* numeric_div picks the scale as div_var's caller there does (select_div_scale). */
	Datum variance = DirectFunctionCall2(numeric_div, numerator, denominator);
	if (!stddev)
		PG_RETURN_DATUM(variance);

	/*
	 * PostgreSQL takes sqrt_var at the variance's scale r, rounding half up; sqrt() picks its own
	 * scale, never smaller than its argument's. Rounding that to r can be one unit too high (a
	 * tail of 49..9 rounded up twice): then (root - unit / 2)^2 > variance, exactly computed.
	 */
	int32 scale = DatumGetInt32(DirectFunctionCall1(numeric_scale, variance));
	Datum root = DirectFunctionCall2(numeric_round, DirectFunctionCall1(numeric_sqrt, variance), Int32GetDatum(scale));
	Datum unit = DirectFunctionCall3(numeric_in, CStringGetDatum(psprintf("1e-%d", scale)),
	                                 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	Datum half_unit = DirectFunctionCall3(numeric_in, CStringGetDatum(psprintf("5e-%d", scale + 1)),
	                                      ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	Datum low = DirectFunctionCall2(numeric_sub, root, half_unit);
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, DirectFunctionCall2(numeric_mul, low, low), variance)) > 0)
		root = DirectFunctionCall2(numeric_sub, root, unit);
	PG_RETURN_DATUM(DirectFunctionCall2(numeric_round, root, Int32GetDatum(scale)));
}

/* float8_moments_result's body: the shards' {N, Sx, Sxx} folded with float8_combine, then the final function. */
Datum
Float8MomentsResult(FunctionCallInfo fcinfo)
{
	ArrayType *states = PG_GETARG_ARRAYTYPE_P(0);
	bool sample = PG_GETARG_BOOL(1);
	bool stddev = PG_GETARG_BOOL(2);
	Datum *values;
	bool *nulls;
	int count;
	deconstruct_array(states, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &values, &nulls, &count);
	if (count % 3 != 0)
		elog(ERROR, "fdwshard: float8_moments_result expects rows of 3 values");

	Datum initial[3] = {Float8GetDatum(0.0), Float8GetDatum(0.0), Float8GetDatum(0.0)};
	Datum state =
	    PointerGetDatum(construct_array(initial, 3, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	for (int i = 0; i < count; i += 3)
	{
		if (nulls[i] || nulls[i + 1] || nulls[i + 2])
			elog(ERROR, "fdwshard: float8_moments_result expects no NULL");
		Datum shard = PointerGetDatum(
		    construct_array(&values[i], 3, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		state = DirectFunctionCall2(float8_combine, state, shard);
	}
	/* The final functions return NULL for these (DirectFunctionCall cannot). */
	float8 n = ((float8 *) ARR_DATA_PTR(DatumGetArrayTypeP(state)))[0];
	if (n <= (sample ? 1.0 : 0.0))
		PG_RETURN_NULL();
	if (sample)
		PG_RETURN_DATUM(DirectFunctionCall1(stddev ? float8_stddev_samp : float8_var_samp, state));
	PG_RETURN_DATUM(DirectFunctionCall1(stddev ? float8_stddev_pop : float8_var_pop, state));
}

} // namespace

} // namespace fdwshard::executor

extern "C"
{
	PG_FUNCTION_INFO_V1(fdwshard_numeric_moments_result);
	PG_FUNCTION_INFO_V1(fdwshard_float8_moments_result);

	/*
	 * fdwshard.numeric_moments_result(count, sum, sum_of_squares, sample, stddev) (STRICT): variance
	 * or stddev, sample or population, of integers or numerics from their exact count, sum and sum
	 * of squares, as PostgreSQL's own aggregates compute it; the coordinator's half of a split one.
	 */
	Datum fdwshard_numeric_moments_result(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry([&]() -> Datum { return fdwshard::executor::NumericMomentsResult(fcinfo); });
	}

	/* fdwshard.float8_moments_result(states float8[], sample, stddev) (STRICT): the same of floats from the shards'
	 * states. */
	Datum fdwshard_float8_moments_result(PG_FUNCTION_ARGS)
	{
		return fdwshard::pg::Entry([&]() -> Datum { return fdwshard::executor::Float8MomentsResult(fcinfo); });
	}
}
