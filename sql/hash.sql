-- fdwshard_hash: equal values under "=" hash equal; known values are stable.
SELECT fdwshard_hash(5::int2) = fdwshard_hash(5::int4) AS int2_int4,
       fdwshard_hash(5::int4) = fdwshard_hash(5::int8) AS int4_int8,
       fdwshard_hash(5::int8) <> fdwshard_hash(6::int8) AS differs;
SELECT fdwshard_hash(1.0::numeric) = fdwshard_hash(1.00::numeric) AS scale,
       fdwshard_hash(-0.0::numeric) = fdwshard_hash(0::numeric) AS zero,
       fdwshard_hash(100::numeric) <> fdwshard_hash(1::numeric) AS hundred,
       fdwshard_hash(1.5::numeric) <> fdwshard_hash(1.50001::numeric) AS differs;
SELECT fdwshard_hash('abc'::text) = fdwshard_hash('abc'::varchar) AS text_varchar,
       fdwshard_hash('abc'::char(5)) = fdwshard_hash('abc'::char(3)) AS bpchar_blanks,
       fdwshard_hash('abc'::text) = fdwshard_hash('abc'::name) AS text_name;
SELECT fdwshard_hash(1.5::float4) = fdwshard_hash(1.5::float8) AS float4_float8,
       fdwshard_hash('-0'::float8) = fdwshard_hash(0::float8) AS negative_zero,
       fdwshard_hash('NaN'::float8) = fdwshard_hash('NaN'::float4) AS nan;

-- Known values: they fix where every row lives, so they must never change.
SELECT fdwshard_hash(1) AS one, fdwshard_hash(2) AS two, fdwshard_hash(3) AS three,
       fdwshard_hash(-1) AS minus_one, fdwshard_hash(1::bigint << 40) AS big;
SELECT fdwshard_hash('abc'::text) AS text, fdwshard_hash(''::text) AS empty,
       fdwshard_hash('ünïcödé'::text) AS unicode, fdwshard_hash('\x0102'::bytea) AS bytea;
SELECT fdwshard_hash('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid) AS uuid,
       fdwshard_hash(true) AS t, fdwshard_hash(false) AS f, fdwshard_hash(12.50::numeric) AS numeric;
SELECT fdwshard_hash('2024-05-12'::date) AS date, fdwshard_hash('2024-05-12 17:21:14'::timestamp) AS ts;

-- timestamptz hashes the instant, whatever the session's TimeZone.
SET TimeZone = 'UTC';
SELECT fdwshard_hash('2024-05-12 17:21:14+00'::timestamptz) AS utc \gset
SET TimeZone = 'Asia/Tokyo';
SELECT fdwshard_hash('2024-05-12 17:21:14+00'::timestamptz) = :utc AS same_instant;
RESET TimeZone;

-- Types without a fast path use their extended hash function, which follows their "=".
SELECT fdwshard_hash('1 day'::interval) = fdwshard_hash('24 hours'::interval) AS interval,
       fdwshard_hash(ARRAY[1, 2]) = fdwshard_hash(ARRAY[1, 2]) AS array,
       fdwshard_hash('10.0.0.1'::inet) <> fdwshard_hash('10.0.0.2'::inet) AS inet;
CREATE COLLATION hash_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT fdwshard_hash('ABC'::text COLLATE hash_ci) = fdwshard_hash('abc'::text COLLATE hash_ci) AS case_insensitive,
       fdwshard_hash('ABC'::text COLLATE "C") = fdwshard_hash('abc'::text COLLATE "C") AS case_sensitive;
DROP COLLATION hash_ci;

-- STRICT, and types without any hash support are refused.
SELECT fdwshard_hash(NULL::int) IS NULL AS null_is_null;
SELECT fdwshard_hash('(1,2)'::point);
