"""The network shells: the asyncio server and client, how a process stops, its log file."""
