"""Reading order and customer files (and webhook bodies) into records for the import writer."""
from crm.services.importing.readers import (
    FORMATS, GENERIC_FIELDS, READERS, ReaderSpec, detect_format, parse_shopify_customer_json,
    parse_shopify_order_json, parse_woocommerce_customer, parse_woocommerce_order, preview,
    read_generic_orders, read_shopify_customers, read_shopify_orders, read_woocommerce_customers,
    read_woocommerce_orders,
)
from crm.services.importing.records import (
    ORDER_STATUSES, PAID_STATUSES, CustomerRecord, LineRecord, OrderRecord, Rejected,
    is_valid_email, normalise_email, parse_bool, parse_money, parse_timestamp,
)

__all__ = [
    "CustomerRecord", "FORMATS", "GENERIC_FIELDS", "LineRecord", "ORDER_STATUSES", "OrderRecord",
    "PAID_STATUSES", "READERS", "ReaderSpec", "Rejected", "detect_format", "is_valid_email",
    "normalise_email", "parse_bool", "parse_money", "parse_shopify_customer_json",
    "parse_shopify_order_json", "parse_timestamp", "parse_woocommerce_customer",
    "parse_woocommerce_order", "preview", "read_generic_orders", "read_shopify_customers",
    "read_shopify_orders", "read_woocommerce_customers", "read_woocommerce_orders",
]
