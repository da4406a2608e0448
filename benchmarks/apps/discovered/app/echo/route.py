"""POST /echo: the JSON body back."""

from typing import Any

from microroute import Request


def POST(request: Request) -> Any:
    return request.json
