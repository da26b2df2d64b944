"""The contracts service. It registers itself with the platform here (see shared.registry)."""
from shared.registry import Registration

SERVICE = Registration(name="contracts", port=8001, app="services.contracts.app", cli="services.contracts.cli")
