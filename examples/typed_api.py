"""A typed JSON API: annotations validate input and document the API.

Its docs page is Swagger UI, which needs the docs extra. Install it and run the app:

    pip install "microroute[docs]"
    microroute run examples/typed_api.py

then, in another terminal:

    curl 'localhost:8000/books?limit=2'
    curl --json '{"title": "Dune", "author": "Herbert", "year": 1965,
                  "isbn": "9780441013593", "tags": ["sf"], "rating": 4.5}' localhost:8000/books
    curl --json '{"title": "", "year": "soon", "pages": 412}' localhost:8000/books  # a 422
    curl -d '{"title": "Dune"}' localhost:8000/books     # a 415: curl -d sends a form
    curl localhost:8000/openapi.json                     # the OpenAPI document
    microroute openapi examples/typed_api.py             # the same, printed

and open http://localhost:8000/docs in a browser: Swagger UI, where "Try it out"
sends requests to the app. The 422 lists every problem of the body, each with
its location and kind (`type`, as pydantic names it).
"""

from __future__ import annotations

import enum
import itertools
from typing import Annotated, Literal

import msgspec

from microroute import App, Router, not_found

router = Router()


class Shelf(enum.Enum):
    """Where a book lives."""

    fiction = "fiction"
    science = "science"
    history = "history"


class NewBook(msgspec.Struct, forbid_unknown_fields=True):
    """A book as the client sends it."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    author: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    year: Annotated[int, msgspec.Meta(ge=-3000, le=3000)]
    isbn: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{9}[0-9X]([0-9]{3})?$")]
    tags: Annotated[list[Annotated[str, msgspec.Meta(max_length=40)]], msgspec.Meta(max_length=20)]
    rating: Annotated[float, msgspec.Meta(ge=0, le=5)] = 0.0


class Book(msgspec.Struct):
    """A stored book."""

    id: int
    title: str
    author: str
    year: int
    isbn: str
    tags: list[str]
    rating: float
    shelf: Shelf


class BookList(msgspec.Struct):
    """One page of books."""

    items: list[Book]
    total: int


_BOOKS: dict[int, Book] = {}
_IDS = itertools.count(1)


@router.get("/books", dynamic="force-dynamic")
def list_books(
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10,
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0,
    tag: list[str] = [],  # noqa: B006 - never mutated; read from ?tag=a&tag=b
) -> BookList:
    """List books, newest first, optionally only those with every given tag."""
    books = [b for b in reversed(_BOOKS.values()) if all(t in b.tags for t in tag)]
    return BookList(items=books[offset : offset + limit], total=len(books))


@router.post("/books")
def create_book(body: NewBook, shelf: Shelf = Shelf.fiction) -> tuple[Book, Literal[201]]:
    """Add a book to a shelf."""
    book = Book(id=next(_IDS), shelf=shelf, **msgspec.structs.asdict(body))
    _BOOKS[book.id] = book
    return book, 201


@router.get("/books/[book_id]", dynamic="force-dynamic")
def get_book(book_id: int) -> Book:
    """One book by its id."""
    book = _BOOKS.get(book_id)
    if book is None:
        not_found(f"No book {book_id}")
    return book


@router.delete("/books/[book_id]")
def delete_book(book_id: int) -> None:
    """Remove a book; removing it twice is fine."""
    _BOOKS.pop(book_id, None)


app = App(
    router,
    docs="/docs",
    title="Bookshelf",
    version="1.0.0",
    description="Books on shelves: a typed microroute API (examples/typed_api.py).",
)
