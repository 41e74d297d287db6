"""The only code that speaks HTTP to a WooCommerce store: its REST API v3, with the store's REST keys.

Writing the issued document back follows the REST API docs, "Create an order note",
https://woocommerce.github.io/woocommerce-rest-api-docs/#create-an-order-note
(source: woocommerce/woocommerce-rest-api-docs ``source/includes/wp-api-v3/_order-notes.md``):
``POST /wp-json/wc/v3/orders/<id>/notes`` with ``{"note": ..., "customer_note": false}``; ``customer_note``
false makes it a private note, "for admin reference only", so the buyer is not notified. The answer is
the note, with its ``id``.

Authentication follows "Authentication over HTTPS",
https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication-over-https: HTTP Basic Auth with
the consumer key as user name and the consumer secret as password. Over plain HTTP the docs require
OAuth 1.0a signatures, which this client does not do, so an ``http://`` store URL is refused before any
request rather than sending the keys in clear.

Choices, where the docs leave it to us (each in ``connection.config``):

- ``query_string_auth`` (default false): the docs' fallback for servers that drop the Authorization
  header ("Consumer key is missing"), sending the keys as query parameters. Opt-in, because query
  strings end up in server logs.
- ``rest_prefix`` (default ``wp-json``): the docs assume ``<site>/wp-json/``; WordPress lets a site
  change that prefix, which the docs do not cover.
- The note is plain text: one line for people, then the PDF link when there is one, then the same
  data as JSON after a fixed ``billmysales:dte`` prefix so a program can find it. The docs say nothing
  about how note text is formatted or filtered, so nothing here relies on HTML.
"""
import json

from ..base import IssuedDocumentInfo
from ..errors import SourceRejectedError
from ..http import StoreHttpClient, order_path_id

DATA_PREFIX = "billmysales:dte"


def note_text(document: IssuedDocumentInfo) -> str:
    lines = [document.note]
    if document.pdf_url:
        lines.append(f"PDF: {document.pdf_url}")
    lines.append(f"{DATA_PREFIX} {json.dumps(document.as_data(), ensure_ascii=False)}")
    return "\n".join(lines)


class WooCommerceClient(StoreHttpClient):
    vendor = "WooCommerce"

    def __init__(self, *, store_url: str, consumer_key: str, consumer_secret: str,
                 query_string_auth: bool = False, rest_prefix: str = "wp-json"):
        super().__init__()
        self.api_url = f"{self.checked_url(store_url, 'URL de la tienda')}/{rest_prefix.strip('/')}/wc/v3"
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.query_string_auth = query_string_auth

    @classmethod
    def for_connection(cls, connection) -> "WooCommerceClient":
        """Built from the tenant's connection; refuses before any request when it cannot authenticate."""
        credentials = connection.credentials or {}
        missing = [name for name in ("consumer_key", "consumer_secret") if not credentials.get(name)]
        if missing:
            raise SourceRejectedError(
                f"La conexión de WooCommerce no tiene {' ni '.join(missing)}: no se puede escribir en la tienda."
            )
        config = connection.config or {}
        return cls(
            store_url=connection.store_url, consumer_key=credentials["consumer_key"],
            consumer_secret=credentials["consumer_secret"],
            query_string_auth=bool(config.get("query_string_auth", False)),
            rest_prefix=config.get("rest_prefix", "wp-json"),
        )

    def _auth(self) -> dict:
        if self.query_string_auth:
            return {"params": {"consumer_key": self.consumer_key, "consumer_secret": self.consumer_secret}}
        return {"auth": (self.consumer_key, self.consumer_secret)}

    def push_document(self, document: IssuedDocumentInfo) -> str:
        """Adds a private note about the document to the order; returns what was written, with the note's id."""
        order_id = order_path_id(self.vendor, document.order_external_id)
        response = self.request(
            "POST", f"{self.api_url}/orders/{order_id}/notes",
            json={"note": note_text(document), "customer_note": False}, **self._auth(),
        )
        note = self.created_object(response)
        return f"Nota privada en la orden {order_id} de WooCommerce (nota {note['id']})"
