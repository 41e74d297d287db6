"""Dashboard pages of the gateways app, one module per area."""
