"""導入: what a store needs before it syncs — the サポートセンター application, the EC-site settings, the
接続テスト and the setup guide that shows the eight steps."""
