-- tierroute_readonly: the role Grafana's Postgres data source logs in as.
--
-- It reads the analyst views and the columns the dashboard (deploy/grafana/tierroute.json)
-- joins on, and nothing else: not prompts, system prompts, answers, errors or metadata
-- in `jobs`, not `api_keys`, and it cannot write. Grafana's SQL editor runs whatever a
-- dashboard editor types, so the database has to be the boundary, not the dashboard.
--
-- Independent of the migrations and idempotent: run it after every `tierroute migrate`
-- (docker compose's grafana-db-role one-off does), as the tables' owner, with psql:
--   GRAFANA_DB_PASSWORD=... psql -v ON_ERROR_STOP=1 -f deploy/postgres/grafana-readonly.sql
-- The password comes from the environment, so it is never on a command line.

\set ON_ERROR_STOP on
\getenv readonly_password GRAFANA_DB_PASSWORD
\if :{?readonly_password}
\else
  \set readonly_password ''
\endif
SELECT length(:'readonly_password') >= 12 AS password_ok \gset
\if :password_ok
\else
  DO $$ BEGIN RAISE EXCEPTION 'set GRAFANA_DB_PASSWORD (12 characters or more)'; END $$;
\endif

SELECT 'CREATE ROLE tierroute_readonly'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tierroute_readonly') \gexec

ALTER ROLE tierroute_readonly WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
  NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 10 PASSWORD :'readonly_password';
-- Belt and braces: even a grant added by mistake later cannot write through this role,
-- and a runaway dashboard query cannot hold the database.
ALTER ROLE tierroute_readonly SET default_transaction_read_only = on;
ALTER ROLE tierroute_readonly SET statement_timeout = '30s';

GRANT CONNECT ON DATABASE :"DBNAME" TO tierroute_readonly;
GRANT USAGE ON SCHEMA public TO tierroute_readonly;
-- Start from nothing on every table and view, then grant what the dashboard reads.
SELECT format('REVOKE ALL ON %I.%I FROM tierroute_readonly', schemaname, tablename)
  FROM pg_tables WHERE schemaname = 'public' \gexec
SELECT format('REVOKE ALL ON %I.%I FROM tierroute_readonly', schemaname, viewname)
  FROM pg_views WHERE schemaname = 'public' \gexec

-- Views run with their owner's rights, so these need nothing on the tables below them.
GRANT SELECT ON cost_by_tier_day, savings, tier_quality TO tierroute_readonly;
-- "Top batches by cost": batches joined to their rollups (a few rows a batch, however
-- many calls it made). The jobs and model_calls columns below are for panels of your own.
GRANT SELECT (id, created_at, job_count, mode) ON batches TO tierroute_readonly;
GRANT SELECT (batch_id, calls, input_tokens, output_tokens, cost_usd, cost_if_opus_usd,
              succeeded_jobs) ON rollup_batches TO tierroute_readonly;
GRANT SELECT (id, batch_id, status, tier, attempts, batch_api,
              created_at, classified_at, started_at, finished_at) ON jobs TO tierroute_readonly;
GRANT SELECT (id, job_id, purpose, model, tier, input_tokens, output_tokens,
              cache_creation_input_tokens, cache_read_input_tokens, cost_usd,
              cost_if_opus_usd, cache_savings_usd, latency_ms, batch_api, simulated,
              created_at) ON model_calls TO tierroute_readonly;
