"""受注取込: the malls' order CSVs (楽天 RMS 受注CSV, Yahoo 注文データCSV, Amazon 注文レポート, Shopify orders export),
one reader per format (rakuten, yahoo, amazon, shopify), read into orders by `importer` through the rule every
order door shares (tatenpo.orders.mall_orders). For shops without API access, and for catching up."""
