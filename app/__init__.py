"""The live dashboard: a FastAPI service that runs pingpong and streams what happens."""
