"""`python -m sandbox`: the HTTP malls on SANDBOX_HTTP_PORT (default 5001), the 楽天 FTP server on
SANDBOX_FTP_PORT (default 2121) and its SFTP server on SANDBOX_SFTP_PORT (default 2222), state in SANDBOX_DB. Port 0 picks a free port; the ports chosen are printed
and, when SANDBOX_PORTS_FILE is set, written there as JSON (how the test fixture finds them). Order mails go to
the SMTP server at SANDBOX_SMTP_URL (smtp://host:port); unset, they wait in the outbox."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

from werkzeug.serving import make_server

from . import create_app, default_db_path, ftp, outbox, sftp


def main() -> int:
    host = os.environ.get("SANDBOX_HOST", "127.0.0.1")
    http_port = int(os.environ.get("SANDBOX_HTTP_PORT", "5001"))
    ftp_port = int(os.environ.get("SANDBOX_FTP_PORT", "2121"))
    # 2222 beside the default FTP port; a caller that moved the FTP port (tests, a second sandbox) gets a free
    # SFTP port rather than a clash on the default.
    sftp_default = "2222" if os.environ.get("SANDBOX_FTP_PORT", "2121") == "2121" else "0"
    sftp_port = int(os.environ.get("SANDBOX_SFTP_PORT", sftp_default))
    db_path = default_db_path()
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    ftp_root = Path(os.environ.get("SANDBOX_FTP_ROOT") or Path(db_path).with_name(Path(db_path).stem + "-ftp"))
    delay = float(os.environ.get("SANDBOX_FTP_DELAY", "3"))
    logging.basicConfig(level=os.environ.get("SANDBOX_LOG_LEVEL", "WARNING"))
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(os.environ.get("SANDBOX_LOG_LEVEL", "WARNING"))

    app = create_app(db_path, "http://placeholder")
    smtp_url = os.environ.get("SANDBOX_SMTP_URL", "")
    try:
        outbox.start(app.extensions["sandbox.state"], smtp_url)
    except ValueError as exc:
        print(f"sandbox: {exc}", file=sys.stderr, flush=True)
        return 2
    ftp_server, processor = ftp.start(app.extensions["sandbox.state"], host, ftp_port, ftp_root, delay)
    ftp_port = ftp_server.socket.getsockname()[1]
    try:
        sftp_listener = sftp.start(app.extensions["sandbox.state"], host, sftp_port, ftp_root, processor,
                                   Path(db_path).with_name(Path(db_path).stem + "-sftp-host.key"))
        sftp_port = sftp_listener.getsockname()[1]
    except OSError as exc:
        # SFTP is the extra route: a taken port must not stop the malls everyone else needs.
        print(f"sandbox: no SFTP server ({host}:{sftp_port}: {exc})", file=sys.stderr, flush=True)
        sftp_port = 0
    server = make_server(host, http_port, app, threaded=True)
    http_port = server.socket.getsockname()[1]
    app.config.update(PUBLIC_URL=f"http://{host}:{http_port}", FTP_HOST=host, FTP_PORT=ftp_port, SFTP_PORT=sftp_port)

    ports = {"http": http_port, "ftp": ftp_port, "sftp": sftp_port, "url": f"http://{host}:{http_port}"}
    if os.environ.get("SANDBOX_PORTS_FILE"):
        target = Path(os.environ["SANDBOX_PORTS_FILE"])
        target.with_suffix(".tmp").write_text(json.dumps(ports))
        target.with_suffix(".tmp").rename(target)
    print(f"sandbox malls: http://{host}:{http_port}/  (FTP {host}:{ftp_port}, SFTP {host}:{sftp_port}, "
          f"state {db_path}, order mails {smtp_url or 'kept in the outbox'})", flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        ftp_server.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
