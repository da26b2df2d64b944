"""The notifications service. It registers itself with the platform here (see shared.registry)."""
from shared.registry import Registration

SERVICE = Registration(name="notifications", port=8004, app="services.notifications.app", cli="services.notifications.cli")
