"""Local stand-ins for outside services, on loopback."""
