"""The local all-in-one run (`make run`): both deployables in one process, no cloud account."""
