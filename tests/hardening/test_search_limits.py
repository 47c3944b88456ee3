"""
`?search=` is bounded, through nginx, on every list and the bulk delete: at most 10 terms
(`DJANGO_SEARCH_MAX_TERMS`, as DRF splits them: on spaces and commas, quoted phrases whole) of
at most 100 characters each; more is a JSON 400 that says the limit, before any query runs.
"""

import httpx
import pytest

from tests.stack import NGINX, Stack, new_account

pytestmark = pytest.mark.stack

ADDRESS = "127.0.0.52"
LISTS = ["/catalog/items/", "/catalog/categories/", "/identity/users/"]


@pytest.fixture(scope="module")
def headers(stack: Stack) -> dict[str, str]:
    return new_account(stack, "searcher", address=ADDRESS).auth


@pytest.mark.parametrize("path", LISTS)
def test_at_most_ten_terms_of_at_most_100_characters(headers, path):
    allowed = [" ".join(f"t{n}" for n in range(10)), "x" * 100, '"a phrase of many words"']
    for search in allowed:
        response = httpx.get(f"{NGINX}{path}", params={"search": search}, headers=headers,
                             timeout=30)  # fmt: skip
        assert response.status_code == 200, (search, response.text)
    refused = [
        " ".join(f"t{n}" for n in range(11)),
        ",".join(f"t{n}" for n in range(11)),
        " ".join(f"t{n}" for n in range(1000)),  # 5 KB: within nginx's 8 KiB request line
        "x" * 101,
        "short " + "y" * 5000,
    ]
    for search in refused:
        response = httpx.get(f"{NGINX}{path}", params={"search": search}, headers=headers,
                             timeout=30)  # fmt: skip
        assert response.status_code == 400, (search[:50], response.text)
        assert response.headers["content-type"] == "application/json"
        assert "search" in response.json()
        assert any(limit in response.text for limit in ("10 terms", "100 characters"))


def test_the_bulk_delete_is_bounded_too(stack):
    search = " ".join(f"t{n}" for n in range(11))
    response = httpx.delete(f"{NGINX}/catalog/items/", params={"search": search},
                            headers=stack.auth, timeout=30)  # fmt: skip
    assert response.status_code == 400
    assert "10 terms" in response.text
