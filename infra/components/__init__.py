"""Small constructs, one concern each; the stack wires them together and makes the grants."""
