/* Keeps PostgreSQL errors (longjmp) and C++ exceptions from ever crossing each other. */
#pragma once

#include "fdwshard/pg.h"

#include <exception>
#include <utility>

namespace fdwshard::pg
{

/* A PostgreSQL error caught by Call(), carried as a C++ exception with its ErrorData. */
class PgError : public std::exception
{
  public:
	explicit PgError(ErrorData *edata) : edata_(edata) {}
	const char *what() const noexcept override { return edata_->message ? edata_->message : "PostgreSQL error"; }
	ErrorData *edata() const noexcept { return edata_; }

  private:
	ErrorData *edata_; /* palloc'd in the caller's memory context */
};

/* Re-raises a caught error as ereport(ERROR); called only after the catch block has ended. */
[[noreturn]] void RaiseCaught(ErrorData *edata, const char *message);

/*
 * Runs body, which may call PostgreSQL, and turns an ereport(ERROR) into PgError. Restores the
 * memory context and error context stack. A C++ exception thrown by body is caught inside the
 * PG_TRY block (so PG_exception_stack is restored by PG_END_TRY, never left at this dead frame)
 * and rethrown after it. Guard per batch, not per row: sigsetjmp is not free.
 */
template <typename Body>
void
Call(Body &&body)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ErrorContextCallback *saved_context_stack = error_context_stack;
	ErrorData *volatile edata = nullptr; /* set inside PG_CATCH, read after longjmp */
	std::exception_ptr cpp_error;        /* set only on the non-longjmp path */

	PG_TRY();
	{
		try
		{
			body();
		}
		catch (...)
		{
			cpp_error = std::current_exception();
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller_context);
		error_context_stack = saved_context_stack;
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();

	if (edata != nullptr)
		throw PgError(edata);
	if (cpp_error)
	{
		error_context_stack = saved_context_stack;
		std::rethrow_exception(cpp_error);
	}
}

/*
 * Body of every function PostgreSQL calls: runs body and turns any C++ exception into a
 * PostgreSQL error, raised only once the catch block is over.
 */
template <typename Body>
auto
Entry(Body &&body) -> decltype(body())
{
	/* A C++ exception may have unwound through PG_TRY blocks below (a bug, but survivable): restore. */
	sigjmp_buf *saved_exception_stack = PG_exception_stack;
	ErrorContextCallback *saved_context_stack = error_context_stack;
	MemoryContext saved_context = CurrentMemoryContext;
	ErrorData *edata = nullptr;
	char message[1024] = "unknown C++ exception"; /* copied: the exception dies with its catch block */

	try
	{
		return body();
	}
	catch (const PgError &error)
	{
		edata = error.edata();
	}
	catch (const std::exception &error)
	{
		strlcpy(message, error.what(), sizeof(message));
	}
	catch (...)
	{
	}
	PG_exception_stack = saved_exception_stack;
	error_context_stack = saved_context_stack;
	MemoryContextSwitchTo(saved_context);
	RaiseCaught(edata, message);
}

/*
 * A function PostgreSQL calls through a pointer (custom scan methods, callbacks) as a named
 * one-line shim: EntryPoint<F>::Call runs F in Entry, so F can be written as plain code.
 */
template <auto F> struct EntryPoint;

template <typename R, typename... Args, R (*F)(Args...)> struct EntryPoint<F>
{
	static R Call(Args... args)
	{
		return Entry([&]() -> R { return F(args...); });
	}
};

} // namespace fdwshard::pg
