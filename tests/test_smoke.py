def test_app_starts(client):
    assert client.get("/setup").status_code == 200
