from .dte.sale import Emisor
from .models import BillerConnection


def biller_emisor(connection: BillerConnection) -> Emisor:
    """The emisor block of every document issued through ``connection``."""
    return Emisor(
        rut=connection.emisor_rut,
        razon_social=connection.emisor_razon_social,
        giro=connection.emisor_giro,
        acteco=connection.emisor_acteco,
        address=connection.emisor_address,
        comuna=connection.emisor_comuna,
    )
