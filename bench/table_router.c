/*
 * table_router: the scale benchmark's floor for point SELECTs. CLIENTS new sessions on one
 * PostgreSQL server each run SELECT v FROM <prefix><id % tables> WHERE id = <id> for random ids
 * for SECONDS, choosing the table themselves: the perfect router, with one table per shard and
 * nothing else. What is left when the table count grows is PostgreSQL's own cost of touching
 * more tables in a session (catalog caches, plans, locks), which no router in front of it avoids.
 *
 * Usage: table_router CONNINFO PREFIX TABLES ROWS simple|prepared CLIENTS SECONDS
 * Prints "tps N", like pgbench -n without the initial connection time; exits 1 on any error.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *conninfo;
static const char *prefix;
static int tables, rows, prepared, clients, seconds;
static pthread_barrier_t connected, started; /* every client connected; the clock set */
static double deadline;

static double
Now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
Fail(PGconn *conn, const char *what)
{
	fprintf(stderr, "table_router: %s: %s", what, PQerrorMessage(conn));
	exit(1);
}

static void *
RunClient(void *arg)
{
	unsigned seed = 7919u * (unsigned) (size_t) arg + 1;
	char *ready = calloc(tables, 1);
	char sql[256], name[32], value[16];
	const char *values[1] = {value};
	long done = 0;

	PGconn *conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		Fail(conn, "connect");
	pthread_barrier_wait(&connected);
	pthread_barrier_wait(&started);
	while (Now() < deadline)
	{
		int id = (int) (rand_r(&seed) % (unsigned) rows) + 1;
		int table = id % tables;
		PGresult *result;

		snprintf(value, sizeof(value), "%d", id);
		if (!prepared)
		{
			snprintf(sql, sizeof(sql), "SELECT v FROM %s%d WHERE id = %d", prefix, table, id);
			result = PQexec(conn, sql);
		}
		else
		{
			/* A table's statement is prepared on its first use, as fdwshard prepares a shard's. */
			snprintf(name, sizeof(name), "t%d", table);
			if (!ready[table])
			{
				snprintf(sql, sizeof(sql), "SELECT v FROM %s%d WHERE id = $1", prefix, table);
				PGresult *prepare = PQprepare(conn, name, sql, 1, NULL);
				if (PQresultStatus(prepare) != PGRES_COMMAND_OK)
					Fail(conn, "prepare");
				PQclear(prepare);
				ready[table] = 1;
			}
			result = PQexecPrepared(conn, name, 1, values, NULL, NULL, 0);
		}
		if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1)
			Fail(conn, "select (or not one row)");
		PQclear(result);
		done++;
	}
	PQfinish(conn);
	free(ready);
	return (void *) done;
}

int
main(int argc, char **argv)
{
	if (argc != 8)
	{
		fprintf(stderr, "usage: table_router CONNINFO PREFIX TABLES ROWS simple|prepared CLIENTS SECONDS\n");
		return 2;
	}
	conninfo = argv[1];
	prefix = argv[2];
	tables = atoi(argv[3]);
	rows = atoi(argv[4]);
	prepared = strcmp(argv[5], "prepared") == 0;
	clients = atoi(argv[6]);
	seconds = atoi(argv[7]);
	if (tables < 1 || rows < 1 || clients < 1 || seconds < 1 || (!prepared && strcmp(argv[5], "simple") != 0))
	{
		fprintf(stderr, "table_router: bad arguments\n");
		return 2;
	}

	pthread_t *threads = calloc(clients, sizeof(pthread_t));
	pthread_barrier_init(&connected, NULL, clients + 1);
	pthread_barrier_init(&started, NULL, clients + 1);
	for (int i = 0; i < clients; i++)
		pthread_create(&threads[i], NULL, RunClient, (void *) (size_t) i);
	pthread_barrier_wait(&connected);
	double start = Now();
	deadline = start + seconds;
	pthread_barrier_wait(&started);
	long total = 0;
	for (int i = 0; i < clients; i++)
	{
		void *done;
		pthread_join(threads[i], &done);
		total += (long) done;
	}
	printf("tps %.1f\n", total / (Now() - start));
	free(threads);
	return 0;
}
