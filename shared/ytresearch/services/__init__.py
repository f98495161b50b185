"""Use cases. Transports (Lambda handlers, the streaming service, the CLI) call these only."""
