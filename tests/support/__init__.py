"""Test support: a throwaway PostgreSQL server, loopback uvicorn, and an SSE parser."""
