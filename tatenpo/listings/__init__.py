"""販売取込 (listing import): one module per mall file format, format detection, linking, preview and the
all-or-nothing import. Views, jobs and the CLI call `importer`; nothing here knows about HTTP.

    reading      decoding (CP932 / UTF-8 ± BOM), CSV rows, columns by header name
    records      Record / row errors shared by every format
    rakuten_item, rakuten_legacy, yahoo_data, yahoo_quantity, amazon, shopify_products, shopify_inventory,
    generic      the formats, each a FORMAT with matches() and read()
    detect       which format a file is
    linking      紐付け rules and the plan (what would change)
    importer     preview and import (one transaction)
    bulk         driver-level bulk writes for big files
    unlinked     the 未紐付け list: link a listing to a product or create one
    uploads      stored uploads under instance/uploads/
    lifecycle    a background preview's and import's life: previewing → previewed, queued → running → done
                 or failed, and noticing a job RQ lost
    staging      the preview's records kept beside the upload, so the import does not read the file again
    progress     a running preview's or import's progress (Redis)
"""
