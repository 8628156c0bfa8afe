"""商品・在庫: the stock rules every change goes through, 在庫CSV in and out, and search."""
