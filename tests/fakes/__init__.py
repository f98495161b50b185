"""Protocol-faithful local stand-ins for the outside services (real servers on loopback)."""
