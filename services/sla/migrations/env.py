from shared.migrations import run_env
from services.sla.adapters.tables import metadata

run_env(metadata)
