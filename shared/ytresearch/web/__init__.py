"""The HTTP adapter shared by the CRUD Lambda and the streaming service: error format, request
context, body limits and authentication. Routes live with their apps."""
