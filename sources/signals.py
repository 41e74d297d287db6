"""What sources tell the rest of the product without depending on it: a connection's status changed
(``sender`` the SourceConnection class; ``connection``, ``status``, ``message``). The pipeline turns it
into the ``connection.needs_attention`` event for integrators."""
from django.dispatch import Signal

connection_status_changed = Signal()
