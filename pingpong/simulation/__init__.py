"""``pingpong simulate``: the sessions in virtual time over an in-memory network."""
