-- fdwshard 0.3 -> 0.4 (operations: backup and restore; scale). Every change here is also in
-- fdwshard--0.4.sql; test/fault/extension_upgrade.sh checks that both give the same extension.
\echo Use "ALTER EXTENSION fdwshard UPDATE" to load this file. \quit
