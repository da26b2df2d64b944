"""The sla service. It registers itself with the platform here (see shared.registry)."""
from shared.registry import Registration

SERVICE = Registration(name="sla", port=8003, app="services.sla.app", cli=None, links={"dashboard": "/dashboard"})
