from shared.migrations import run_env
from services.contracts.adapters.tables import metadata

run_env(metadata)
