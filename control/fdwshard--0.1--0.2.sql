-- fdwshard 0.1 -> 0.2 (hardening). Every change here is also in fdwshard--0.2.sql;
-- test/fault/extension_upgrade.sh checks that both give the same extension.
\echo Use "ALTER EXTENSION fdwshard UPDATE" to load this file. \quit
