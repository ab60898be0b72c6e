"""The system's definitions, with no asyncio, sockets or processes in them.

The wire protocol and the two log formats (pure codecs over bytes and strings), the
protocol's behaviour as sessions (bytes and instants in; sends, log lines and timers
out), settings, states, the run folder's layout, and the small pure helpers the shells
share (lateness histograms, the stderr budget, diagnostics lines, fatal errors).
"""
