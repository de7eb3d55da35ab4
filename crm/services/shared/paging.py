"""Page arithmetic shared by the list pages."""
from __future__ import annotations


def clamp_page(total: int, page: int, per_page: int) -> tuple[int, int]:
    """Return (page, pages): the asked page kept within 1..pages, and how many pages there are."""
    pages = max(1, -(-total // per_page))
    return min(max(1, page), pages), pages
