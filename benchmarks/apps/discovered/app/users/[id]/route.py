"""GET /users/[id]"""


def GET(id: str) -> dict[str, str]:
    return {"id": id}
