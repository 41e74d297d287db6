"""LibreDTE (libredte.cl or a self-hosted Community Edition) as a biller: emitir → generar with a checkpoint."""
