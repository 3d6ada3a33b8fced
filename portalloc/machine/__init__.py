"""This host: what its sockets say about a port, who holds it, launching a program."""
