"""The dashboard: one page and its scripts, all served by this process (nothing from the
internet). Plotly's bundle comes from the `plotly` package's own data."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

router = APIRouter(tags=["dashboard"], include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"
_ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}


def plotly_bundle() -> Path:
    """plotly.min.js as the installed `plotly` package ships it."""
    return Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/favicon.ico")
async def no_icon() -> Response:
    return Response(status_code=204)


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    if name == "plotly.min.js":
        return FileResponse(plotly_bundle(), media_type="text/javascript")
    if name not in _ASSETS:
        raise HTTPException(404, f"no asset {name}")
    return FileResponse(STATIC / name, media_type=_ASSETS[name])
