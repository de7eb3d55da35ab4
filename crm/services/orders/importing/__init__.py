"""Reading order and customer files (and webhook bodies) into records for the import writer."""
from crm.services.orders.importing.generic import GENERIC_FIELDS, read_generic_orders
from crm.services.orders.importing.reading import FORMATS, detect_format
from crm.services.orders.importing.records import (
    ORDER_STATUSES,
    PAID_STATUSES,
    CustomerRecord,
    LineRecord,
    OrderRecord,
    Rejected,
    is_valid_email,
    normalise_email,
    parse_bool,
    parse_money,
    parse_timestamp,
)
from crm.services.orders.importing.registry import READERS, ReaderSpec, preview
from crm.services.orders.importing.shopify import (
    parse_shopify_customer_json,
    parse_shopify_order_json,
    read_shopify_customers,
    read_shopify_orders,
)
from crm.services.orders.importing.woocommerce import (
    parse_woocommerce_customer,
    parse_woocommerce_order,
    read_woocommerce_customers,
    read_woocommerce_orders,
)

__all__ = [
    "CustomerRecord", "FORMATS", "GENERIC_FIELDS", "LineRecord", "ORDER_STATUSES", "OrderRecord",
    "PAID_STATUSES", "READERS", "ReaderSpec", "Rejected", "detect_format", "is_valid_email",
    "normalise_email", "parse_bool", "parse_money", "parse_shopify_customer_json",
    "parse_shopify_order_json", "parse_timestamp", "parse_woocommerce_customer",
    "parse_woocommerce_order", "preview", "read_generic_orders", "read_shopify_customers",
    "read_shopify_orders", "read_woocommerce_customers", "read_woocommerce_orders",
]
