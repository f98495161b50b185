"""Baseline for the cold-start benchmark: a bare FastAPI + Mangum hello world."""

from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


handler = Mangum(app, lifespan="off")
