"""The payments service. It registers itself with the platform here (see shared.registry)."""
from shared.registry import Registration

SERVICE = Registration(name="payments", port=8002, app="services.payments.app", cli=None)
