#!/usr/bin/env bash
# Runs once, when the postgres image initialises an empty data directory
# (/docker-entrypoint-initdb.d). One login role and one database per service, each owning its
# own: the services share no tables, and now cannot read each other's either.
# The passwords come from the container's environment (compose reads them from .env).
set -eo pipefail  # no -u: the postgres entrypoint sources this file when it is not executable

create_service_database() {
  local service=$1 password=$2
  if [ -z "$password" ]; then
    echo "no password for the $service database" >&2
    return 1
  fi
  # psql variables (:"name" quotes an identifier, :'name' a literal) keep the password out of
  # the SQL text and safely quoted whatever characters it has.
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
       -v service="$service" -v password="$password" <<'SQL'
CREATE ROLE :"service" LOGIN PASSWORD :'password';
CREATE DATABASE :"service" OWNER :"service";
REVOKE ALL ON DATABASE :"service" FROM PUBLIC;
SQL
}

create_service_database contracts     "${CONTRACTS_DB_PASSWORD:-}"
create_service_database payments      "${PAYMENTS_DB_PASSWORD:-}"
create_service_database sla           "${SLA_DB_PASSWORD:-}"
create_service_database notifications "${NOTIFICATIONS_DB_PASSWORD:-}"
