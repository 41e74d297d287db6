"""What every API endpoint shares: the error body, keyset pagination, the JSON parser, idempotent POSTs,
throttling, and the OpenAPI extensions that document them."""
