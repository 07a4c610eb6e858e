/*
 * Compile-time guard: core/ is pure C++ and must never see PostgreSQL headers. Each core/ source
 * defines FDWSHARD_CORE_SOURCE first and includes this header last.
 */
#pragma once

#if defined(FDWSHARD_CORE_SOURCE) && defined(PG_VERSION_NUM)
#error "fdwshard core/ code must not include postgres.h: keep it free of PostgreSQL so GoogleTest can link it"
#endif
