"""GET /hello"""


def GET() -> dict[str, str]:
    return {"message": "Hello, World!"}
