"""Which reader reads which kind of import, which formats each accepts, and a preview of the first records."""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from crm.services.orders.importing.generic import read_generic_orders
from crm.services.orders.importing.reading import FORMATS, Item, detect_format
from crm.services.orders.importing.records import CustomerRecord, OrderRecord
from crm.services.orders.importing.shopify import SHOPIFY_FORMATS, read_shopify_customers, read_shopify_orders
from crm.services.orders.importing.woocommerce import (
    WOOCOMMERCE_FORMATS,
    read_woocommerce_customers,
    read_woocommerce_orders,
)

# == registry ==================================================================================

@dataclass(frozen=True)
class ReaderSpec:
    """``read(fileobj, fmt, **options)`` yields ``record`` / Rejected; ``formats`` it accepts."""

    read: Callable[..., Iterator[Item]]
    formats: tuple[str, ...]
    default_format: str | None
    record: type


READERS: dict[str, ReaderSpec] = {
    "shopify-orders": ReaderSpec(read_shopify_orders, SHOPIFY_FORMATS, "csv", OrderRecord),
    "shopify-customers": ReaderSpec(read_shopify_customers, SHOPIFY_FORMATS, "csv", CustomerRecord),
    "woocommerce-orders": ReaderSpec(read_woocommerce_orders, WOOCOMMERCE_FORMATS, "json", OrderRecord),
    "woocommerce-customers": ReaderSpec(read_woocommerce_customers, WOOCOMMERCE_FORMATS, "json", CustomerRecord),
    "orders": ReaderSpec(read_generic_orders, FORMATS, None, OrderRecord),
}

def preview(kind: str, fileobj: Any, n: int = 10, fmt: str | None = None, **options: Any) -> list[Item]:
    """The first ``n`` items (records and Rejected) exactly as the import will read them.

    ``fmt`` defaults to the file name's extension, then to the kind's usual format. The file
    position moves: seek back before importing the same file object.
    """
    if kind not in READERS:
        raise ValueError(f"unknown import kind {kind!r}; use one of {', '.join(READERS)}")
    if fmt is None:
        name = fileobj if isinstance(fileobj, (str, os.PathLike)) else getattr(fileobj, "name", None)
        fmt = detect_format(name) if isinstance(name, (str, os.PathLike)) else None
    reader = READERS[kind].read(fileobj, fmt or READERS[kind].default_format, **options)
    try:
        return list(itertools.islice(reader, max(n, 0)))
    finally:
        reader.close()
