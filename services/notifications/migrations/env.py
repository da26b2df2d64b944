from shared.migrations import run_env
from services.notifications.adapters.tables import metadata

run_env(metadata)
