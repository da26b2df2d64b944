from shared.migrations import run_env
from services.payments.adapters.tables import metadata

run_env(metadata)
